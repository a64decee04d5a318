"""One code path to any EVM chain: the embedded one or an ``http(s)://`` JSON-RPC node.

Transactions are always signed locally (the sender's key never leaves the process) and sent with
``eth_sendRawTransaction``; the node is never asked to hold keys. Before sending, each call is
estimated, which also surfaces a contract's custom error without paying for a failed transaction;
errors are translated here into :class:`ledger.errors.ContractRevert` whose ``code`` is the custom
error's name in snake_case, so nothing from web3 leaks out of ``ledger``.
"""

from __future__ import annotations

import ast
import functools
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from eth_account.signers.local import LocalAccount
from eth_utils.abi import function_signature_to_4byte_selector
from web3 import Web3
from web3.contract.contract import Contract, ContractConstructor, ContractFunction
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    TimeExhausted,
    TransactionNotFound,
    Web3Exception,
)
from web3.types import TxParams, TxReceipt

from ledger.errors import ChainError, ContractRevert

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
# eth-tester reports a revert during estimation as the repr of the raw revert bytes.
# Hardhat answers an eth_call that reverts with a custom error it has no ABI for like this.
_HARDHAT_REVERT = re.compile(r"unrecognized custom error \(return data: (0x[0-9a-fA-F]{8,})\)")
_TESTER_REVERT = re.compile(r"execution reverted: (b'.*'|b\".*\")$", re.DOTALL)
# A node's refusal of a nonce another process used first (Geth, Besu, Hardhat, eth-tester wording)
_STALE_NONCE = re.compile(
    r"nonce too low|nonce has already been used|replacement transaction underpriced", re.I
)
NONCE_RETRIES = 3


def snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def _abi_type(param: dict[str, Any]) -> str:
    if param["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){param['type'][5:]}"
    return str(param["type"])


@dataclass(frozen=True)
class Receipt:
    tx_hash: str
    block_number: int
    gas_used: int
    raw: TxReceipt


class Chain:
    """A web3 handle plus safe transaction sending. Thread-safe."""

    def __init__(self, w3: Web3, *, kind: str, on_close: Callable[[], None] | None = None) -> None:
        self.w3 = w3
        self.kind = kind  # "embedded" or "http"
        self._on_close = on_close
        self._nonces: dict[str, int] = {}
        self._send_lock = threading.RLock()
        self._errors: dict[bytes, tuple[str, list[str]]] = {}
        self.chain_id: int = self._rpc(lambda: int(w3.eth.chain_id))

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def embedded(cls, path: Path, funder_address: str) -> Chain:
        from ledger.chain.embedded import open_embedded

        w3, backend = open_embedded(path, bytes.fromhex(funder_address[2:]))
        # eth-tester insists on a "from" for eth_call and has no unlocked accounts of its own.
        w3.eth.default_account = Web3.to_checksum_address(funder_address)
        return cls(w3, kind="embedded", on_close=backend.close)

    @classmethod
    def http(cls, url: str, *, timeout: float = 30.0) -> Chain:
        # No retries inside web3 (by default it retries reads 5 times): ``timeout`` then bounds a
        # request as SHARETRAIL_CHAIN_TIMEOUT says, and a hung node holds an API request for one
        # timeout, not six. The anchoring loop retries on its own schedule.
        provider = Web3.HTTPProvider(
            url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None
        )
        w3 = Web3(provider)
        return cls(w3, kind="http")

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    # -- errors ---------------------------------------------------------------------------------
    def register_errors(self, abi: Iterable[dict[str, Any]]) -> None:
        """Learn the custom errors of an ABI so reverts can be named."""
        for item in abi:
            if item.get("type") == "error":
                types = [_abi_type(p) for p in item["inputs"]]
                selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
                self._errors[selector] = (item["name"], types)

    def _decode_revert(self, data: Any) -> ContractRevert:
        raw = bytes.fromhex(data[2:]) if isinstance(data, str) and data.startswith("0x") else b""
        known = self._errors.get(raw[:4])
        if known is None:
            return ContractRevert(f"contract reverted (data {data})", code="contract_revert", data=str(data))
        name, types = known
        try:
            args = list(self.w3.codec.decode(types, raw[4:]))
        except Exception:
            args = []
        shown = ", ".join(a.hex() if isinstance(a, bytes) else str(a) for a in args)
        return ContractRevert(
            f"contract reverted: {name}({shown})", code=snake(name), error=name, args=args, data=str(data)
        )

    def _translate(self, exc: Exception) -> ChainError:
        if isinstance(exc, ContractCustomError):
            return self._decode_revert(exc.data)
        if isinstance(exc, ContractLogicError):
            if isinstance(exc.data, str) and exc.data.startswith("0x") and len(exc.data) >= 10:
                return self._decode_revert(exc.data)
            hardhat = _HARDHAT_REVERT.search(str(exc))
            if hardhat:
                return self._decode_revert(hardhat.group(1))
            return ContractRevert(f"contract reverted: {exc.message or exc}", code="contract_revert")
        match = _TESTER_REVERT.search(str(exc))
        if match:
            try:
                raw = ast.literal_eval(match.group(1))
            except (ValueError, SyntaxError):
                raw = b""
            if isinstance(raw, bytes) and len(raw) >= 4:
                return self._decode_revert("0x" + raw.hex())
        hardhat = _HARDHAT_REVERT.search(str(exc))
        if hardhat:
            return self._decode_revert(hardhat.group(1))
        if "revert" in str(exc):
            return ContractRevert(f"contract reverted: {exc}", code="contract_revert")
        return ChainError(f"chain request failed: {type(exc).__name__}: {exc}", code="chain_unavailable")

    def _rpc(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except ChainError:
            raise
        except (Web3Exception, OSError, ValueError, TimeoutError) as exc:
            raise self._translate(exc) from exc
        except Exception as exc:  # eth-tester raises its own types through the provider
            if type(exc).__module__.startswith(("eth_tester", "eth.", "eth_utils", "requests", "urllib3")):
                raise self._translate(exc) from exc
            raise

    # -- reads ----------------------------------------------------------------------------------
    def call(self, fn: ContractFunction, block: Any = "latest") -> Any:
        return self._rpc(lambda: fn.call(block_identifier=block))

    def contract(self, address: str, abi: list[dict[str, Any]]) -> Contract:
        self.register_errors(abi)
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)

    def code_at(self, address: str) -> bytes:
        return bytes(self._rpc(lambda: self.w3.eth.get_code(Web3.to_checksum_address(address))))

    def balance(self, address: str) -> int:
        return int(self._rpc(lambda: self.w3.eth.get_balance(Web3.to_checksum_address(address))))

    def block_number(self) -> int:
        return int(self._rpc(lambda: self.w3.eth.block_number))

    def latest_block(self) -> dict[str, Any]:
        """The latest block's number and timestamp (the chain's clock)."""
        block = self._rpc(lambda: self.w3.eth.get_block("latest"))
        return {"number": int(block["number"]), "timestamp": int(block["timestamp"])}

    # -- writes ---------------------------------------------------------------------------------
    def _fees(self) -> dict[str, int]:
        block = self._rpc(lambda: self.w3.eth.get_block("latest"))
        base = int(block.get("baseFeePerGas") or 0)
        if base == 0:  # free-gas consortium networks (e.g. Besu QBFT with zero base fee)
            return {"gasPrice": int(self._rpc(lambda: self.w3.eth.gas_price))}
        tip = 10**9 if self.kind == "http" else 1
        return {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}

    def _next_nonce(self, address: str) -> int:
        if address not in self._nonces:
            checksum = Web3.to_checksum_address(address)
            count = self._rpc(lambda: self.w3.eth.get_transaction_count(checksum, "pending"))
            self._nonces[address] = int(count)
        return self._nonces[address]

    def _send(self, sender: LocalAccount, build: Callable[[int], Any]) -> Any:
        """Sign and send the transaction ``build(nonce)`` makes; its hash. The nonce is this
        process's count for the sender — but another process may send from the same account (the
        workers of one deployment share the registrar's and the platform's keys), so a node that
        answers "nonce too low" (the nonce was used) or "replacement transaction underpriced" (one
        is pending under it) has not taken ours: the count is read again from the node and the
        transaction rebuilt, up to ``NONCE_RETRIES`` times. Any other refusal (including "already
        known": ours is in the pool) is raised, the count resynced next time."""
        for attempt in range(NONCE_RETRIES):
            nonce = self._next_nonce(sender.address)
            send = functools.partial(
                self.w3.eth.send_raw_transaction, sender.sign_transaction(build(nonce)).raw_transaction
            )
            try:
                tx_hash = self._rpc(send)
            except ChainError as exc:
                self._nonces.pop(sender.address, None)  # resync from the node next time
                if attempt + 1 < NONCE_RETRIES and _STALE_NONCE.search(exc.message):
                    continue
                raise
            self._nonces[sender.address] = nonce + 1
            return tx_hash
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def transact(
        self,
        fn: ContractFunction | ContractConstructor,
        sender: LocalAccount,
        *,
        gas: int | None = None,
        timeout: float = 60.0,
    ) -> Receipt:
        """Estimate, sign, send and wait for the receipt; raise ContractRevert on revert."""
        with self._send_lock:
            params: dict[str, Any] = {"from": sender.address, "chainId": self.chain_id, **self._fees()}
            if gas is None:
                estimate = int(self._rpc(lambda: fn.estimate_gas({"from": sender.address})))
                gas = estimate + estimate // 5 + 10_000
            params["gas"] = gas
            tx_hash = self._send(
                sender,
                lambda nonce: self._rpc(
                    lambda: fn.build_transaction(cast(TxParams, {**params, "nonce": nonce}))
                ),
            )
        receipt = self.wait(tx_hash, timeout=timeout)
        if receipt.raw["status"] != 1:
            raise ContractRevert(f"transaction {receipt.tx_hash} reverted on chain", code="tx_reverted")
        return receipt

    def send_value(self, sender: LocalAccount, to: str, value: int) -> Receipt:
        with self._send_lock:
            tx: dict[str, Any] = {
                "to": Web3.to_checksum_address(to),
                "value": value,
                "gas": 21_000,
                "chainId": self.chain_id,
                **self._fees(),
            }
            tx_hash = self._send(sender, lambda nonce: {**tx, "nonce": nonce})
        return self.wait(tx_hash)

    def wait(self, tx_hash: Any, *, timeout: float = 60.0) -> Receipt:
        deadline = time.monotonic() + timeout
        while True:
            try:
                raw = self.w3.eth.get_transaction_receipt(tx_hash)
                break
            except (TransactionNotFound, TimeExhausted):
                if time.monotonic() > deadline:
                    raise ChainError(f"no receipt for {Web3.to_hex(tx_hash)} after {timeout}s") from None
                time.sleep(0.05)
            except Exception as exc:
                raise self._translate(exc) from exc
        return Receipt(
            tx_hash=Web3.to_hex(raw["transactionHash"]),
            block_number=int(raw["blockNumber"]),
            gas_used=int(raw["gasUsed"]),
            raw=raw,
        )
