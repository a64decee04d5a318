"""A read-only Ethereum JSON-RPC facade over the ledger's chain.

With the embedded chain, outsiders have no node to ask; ``POST /rpc`` serves exactly the read
methods an auditor needs to check anchors and grants (DESIGN.md), in standard JSON-RPC encoding
(hex quantities and data), so ``web3.HTTPProvider(".../rpc")`` works against it unchanged. Anything
that could change state (``eth_sendRawTransaction``, ``eth_sendTransaction``, ``evm_*``) is refused.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from hexbytes import HexBytes
from web3 import Web3
from web3.datastructures import AttributeDict

from ledger.chain.client import Chain
from ledger.errors import ChainError, ContractRevert

METHODS = (
    "eth_chainId",
    "net_version",
    "eth_blockNumber",
    "eth_call",
    "eth_getLogs",
    "eth_getTransactionReceipt",
    "eth_getTransactionByHash",
    "eth_getBlockByNumber",
    "eth_getBlockByHash",
    "eth_getCode",
    "eth_getBalance",
    "eth_getStorageAt",
)

# JSON-RPC 2.0 error codes
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, SERVER_ERROR = (
    -32700,
    -32600,
    -32601,
    -32602,
    -32000,
)
EXECUTION_REVERTED = 3

log = logging.getLogger(__name__)


class InvalidParams(Exception):
    """A request's params are malformed (-32602). Not a ``ValueError``: the chain client translates
    those into its own errors (a node failure, -32000)."""


_BLOCK_HASH = re.compile(r"0x[0-9a-fA-F]{64}")


def to_rpc(value: Any) -> Any:
    """Encode web3's Python values back into JSON-RPC wire form."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, bytes | bytearray | HexBytes):
        return "0x" + bytes(value).hex()
    if isinstance(value, Mapping | AttributeDict):
        return {k: to_rpc(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_rpc(v) for v in value]
    return value


def _block(ident: Any) -> int | str:
    if isinstance(ident, str) and ident.startswith("0x"):
        return int(ident, 16)
    if ident in (None, "latest", "earliest", "pending", "safe", "finalized"):
        return ident or "latest"
    raise InvalidParams(f"bad block identifier {ident!r}")


def _addr(value: Any) -> str:
    if not isinstance(value, str) or not Web3.is_address(value):
        raise InvalidParams(f"bad address {value!r}")
    return Web3.to_checksum_address(value)


def _tx(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidParams("call object must be an object")
    tx: dict[str, Any] = {}
    if "to" in value:
        tx["to"] = _addr(value["to"])
    if value.get("from"):
        tx["from"] = _addr(value["from"])
    for key in ("data", "input"):
        if key in value:
            tx["data"] = value[key]
    return tx


def _filter(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidParams("filter must be an object")
    out: dict[str, Any] = {}
    for key in ("fromBlock", "toBlock"):
        if key in value:
            out[key] = _block(value[key])
    if "address" in value:
        addr = value["address"]
        out["address"] = [_addr(a) for a in addr] if isinstance(addr, list) else _addr(addr)
    if "topics" in value:
        out["topics"] = value["topics"]
    if "blockHash" in value:  # EIP-234: one block by its hash, instead of a range
        if "fromBlock" in value or "toBlock" in value:
            raise InvalidParams("blockHash cannot be combined with fromBlock or toBlock (EIP-234)")
        block_hash = value["blockHash"]
        if not isinstance(block_hash, str) or not _BLOCK_HASH.fullmatch(block_hash):
            raise InvalidParams(f"bad block hash {block_hash!r}")
        out["blockHash"] = block_hash
    return out


class ReadOnlyRPC:
    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        eth: Any = chain.w3.eth  # params arrive as JSON; web3 validates them

        def get_logs(query: dict[str, Any]) -> Any:
            block_hash = query.pop("blockHash", None)
            if block_hash is not None:  # eth-tester takes only a range: the block's own number
                try:
                    number = eth.get_block(block_hash)["number"]
                except Exception as exc:
                    raise InvalidParams(f"unknown block {block_hash}") from exc
                query["fromBlock"] = query["toBlock"] = number
            # Block numbers past the head are read as the head, as Geth does: eth-tester answers
            # them "not found", which an outside checker would take for "no anchors" (a null).
            start, end = query.get("fromBlock"), query.get("toBlock")
            if isinstance(start, int) or isinstance(end, int):
                head = eth.block_number
                if isinstance(start, int) and start > head:
                    return []
                if isinstance(end, int) and end > head:
                    query["toBlock"] = head
            return eth.get_logs(query)

        def p(i: int) -> Callable[[list[Any]], Any]:
            return lambda params: params[i] if len(params) > i else None

        self._handlers: dict[str, Callable[[list[Any]], Any]] = {
            "eth_chainId": lambda _: chain.chain_id,
            "net_version": lambda _: str(chain.chain_id),
            "eth_blockNumber": lambda _: eth.block_number,
            "eth_call": lambda a: eth.call(_tx(p(0)(a)), block_identifier=_block(p(1)(a))),
            "eth_getLogs": lambda a: get_logs(_filter(p(0)(a))),
            "eth_getTransactionReceipt": lambda a: eth.get_transaction_receipt(p(0)(a)),
            "eth_getTransactionByHash": lambda a: eth.get_transaction(p(0)(a)),
            "eth_getBlockByNumber": lambda a: eth.get_block(_block(p(0)(a)), bool(p(1)(a))),
            "eth_getBlockByHash": lambda a: eth.get_block(p(0)(a), bool(p(1)(a))),
            "eth_getCode": lambda a: eth.get_code(_addr(p(0)(a)), _block(p(1)(a))),
            "eth_getBalance": lambda a: eth.get_balance(_addr(p(0)(a)), _block(p(1)(a))),
            "eth_getStorageAt": lambda a: eth.get_storage_at(
                _addr(p(0)(a)), int(p(1)(a), 16), _block(p(2)(a))
            ),
        }

    def handle(self, request: Any) -> Any:
        """Answer one JSON-RPC request object or a batch (list)."""
        if isinstance(request, list):
            if not request:
                return _error(None, INVALID_REQUEST, "empty batch")
            return [self._one(r) for r in request[:100]]
        return self._one(request)

    def _one(self, request: Any) -> dict[str, Any]:
        if (
            not isinstance(request, dict)
            or request.get("jsonrpc") != "2.0"
            or not isinstance(request.get("method"), str)
        ):
            return _error(
                request.get("id") if isinstance(request, dict) else None,
                INVALID_REQUEST,
                "not a JSON-RPC 2.0 request",
            )
        rid, method = request.get("id"), request["method"]
        params = request.get("params", [])
        handler = self._handlers.get(method)
        if handler is None:
            return _error(
                rid, METHOD_NOT_FOUND, f"method {method} is not available on this read-only endpoint"
            )
        if not isinstance(params, list):
            return _error(rid, INVALID_PARAMS, "params must be an array")
        try:
            result = self.chain._rpc(lambda: handler(params))
        except (InvalidParams, ValueError, TypeError, AttributeError) as exc:
            return _error(rid, INVALID_PARAMS, f"invalid params: {exc}")
        except ContractRevert as exc:
            return _error(rid, EXECUTION_REVERTED, "execution reverted", exc.details.get("data"))
        except ChainError as exc:
            if "NotFound" in exc.message or "not found" in exc.message.lower():
                return {"jsonrpc": "2.0", "id": rid, "result": None}
            return _error(rid, SERVER_ERROR, exc.message)
        except Exception:  # the node's own failure: still a JSON-RPC answer, never an HTTP 500
            log.exception("rpc %s failed", method)
            return _error(rid, SERVER_ERROR, f"{method} failed on the node")
        return {"jsonrpc": "2.0", "id": rid, "result": to_rpc(result)}


def _error(rid: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": rid, "error": err}
