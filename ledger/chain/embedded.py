"""The embedded chain: eth-tester on py-evm, persisted on disk in the data directory.

eth-tester's ``PyEVMBackend`` builds its chain on an in-memory database and from genesis every time.
:class:`PersistentPyEVMBackend` builds the same chain class on :class:`SQLiteKV` (``chain.sqlite`` in
the data dir): the first start writes genesis (with the platform's funding account as the only
funded account, never eth-tester's well-known test keys); later starts reopen the chain from its
canonical head, so blocks, balances, nonces, contracts and their storage survive a restart.

Every mined block is committed to disk before ``eth_sendRawTransaction`` returns (auto-mining), so
a transaction hash handed to a caller is never lost by a crash; a block whose write fails (a full
disk) is dropped from memory too, and the sender gets ``ChainError`` (``chain_write_failed``).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.db.chain import ChainDB
from eth.exceptions import CanonicalHeadNotFound
from eth.vm.forks.prague import PragueVM
from eth_tester import EthereumTester
from eth_tester.backends.pyevm.main import PyEVMBackend, get_default_genesis_params
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider
from web3.types import RPCEndpoint, RPCResponse

from ledger.chain.kvstore import SQLiteKV
from ledger.errors import ChainError

# eth-tester's chain id: web3's EthereumTesterProvider answers eth_chainId with this constant, so the
# chain must validate transactions against the same value.
EMBEDDED_CHAIN_ID = 131277322940537
GENESIS_BALANCE = 10**30  # wei for the platform funder; gas on the embedded chain is otherwise free to us


class _EmbeddedChain(MiningChain):
    chain_id = EMBEDDED_CHAIN_ID
    vm_configuration = ((0, PragueVM),)  # type: ignore[assignment]

    def create_header_from_parent(self, parent_header: Any, **header_params: Any) -> Any:
        # Keep the gas limit constant, as eth-tester's tester chain does.
        return super().create_header_from_parent(
            parent_header, **{**header_params, "gas_limit": parent_header.gas_limit}
        )

    def get_transaction_builder(self) -> Any:
        return super().get_vm().get_transaction_builder()


_HELD: dict[Path, tuple[int, int]] = {}  # lock file -> (fd, opens in this process)
_HELD_LOCK = threading.Lock()


def _claim(path: Path) -> Path:
    """One process per embedded chain: py-evm keeps the chain's head in memory, so two processes
    mining on one file would fork it silently (two blocks at one height, each process blind to the
    other's). An exclusive ``flock`` on ``<file>.lock``, held while the chain is open, makes the
    second process fail at once instead; opens within one process share it."""
    lock = path.with_name(path.name + ".lock")
    with _HELD_LOCK:
        held = _HELD.get(lock)
        if held is not None:
            _HELD[lock] = (held[0], held[1] + 1)
            return lock
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ChainError(
                f"the embedded chain {path} is open in another process — a running `sharetrail "
                "serve` or `demo` on this data directory (stop it first, or ask it: POST "
                "/v1/audit/verify), or another worker: several processes (uvicorn --workers) need an "
                "external chain, SHARETRAIL_CHAIN=http(s)://…",
                code="embedded_chain_in_use",
            ) from None
        _HELD[lock] = (fd, 1)
        return lock


def _release(lock: Path) -> None:
    with _HELD_LOCK:
        held = _HELD.get(lock)
        if held is None:
            return
        if held[1] > 1:
            _HELD[lock] = (held[0], held[1] - 1)
            return
        del _HELD[lock]
        os.close(held[0])  # releases the flock


class PersistentPyEVMBackend(PyEVMBackend):  # type: ignore[misc]
    """A PyEVMBackend whose database is a file; reopened from its canonical head on restart."""

    def __init__(self, path: Path, funder: bytes) -> None:
        self._claimed = _claim(path)
        try:
            self._kv = SQLiteKV(path)
            self._funder = funder
            super().__init__()
        except BaseException:
            _release(self._claimed)
            raise

    def reset_to_genesis(self, *args: Any, **kwargs: Any) -> None:
        base_db = AtomicDB(self._kv)
        self.account_keys = ()  # no unlocked accounts: every transaction is signed by its sender
        try:
            ChainDB(base_db).get_canonical_head()
        except CanonicalHeadNotFound:
            genesis_state: Any = {
                self._funder: {"balance": GENESIS_BALANCE, "nonce": 0, "code": b"", "storage": {}}
            }
            self.chain = _EmbeddedChain.from_genesis(base_db, get_default_genesis_params(), genesis_state)
            self._kv.commit()
        else:
            self.chain = _EmbeddedChain(base_db)

    def mine_blocks(self, num_blocks: int = 1, coinbase: Any = None) -> Any:
        try:
            if coinbase is None:
                hashes = super().mine_blocks(num_blocks)
            else:
                hashes = super().mine_blocks(num_blocks, coinbase)
            self._kv.commit()
        except BaseException as exc:
            # A block that did not reach the disk must not be seen either: drop the buffered writes
            # and reopen the chain from its head on disk. Otherwise later reads (the anchor's
            # ``latest()``, a receipt) would report a block that a crash loses — and the store would
            # record a checkpoint the chain no longer has (found by the full-disk fault test).
            self._kv.discard()
            self.reset_to_genesis()
            if isinstance(exc, sqlite3.Error):
                raise ChainError(
                    f"the embedded chain could not write its block: {exc}", code="chain_write_failed"
                ) from exc
            raise
        return hashes

    def close(self) -> None:
        try:
            self._kv.commit()
            self._kv.close()
        finally:
            _release(self._claimed)


class _LockedTesterProvider(EthereumTesterProvider):
    """py-evm is not thread-safe; the API serves requests from a thread pool."""

    def __init__(self, tester: EthereumTester) -> None:
        super().__init__(ethereum_tester=tester)
        self._lock = threading.RLock()

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        with self._lock:
            return super().make_request(method, params)


def open_embedded(path: Path, funder: bytes) -> tuple[Web3, PersistentPyEVMBackend]:
    """Open (or create) the embedded chain at ``path``; returns the web3 handle and the backend."""
    backend = PersistentPyEVMBackend(path, funder)
    tester = EthereumTester(backend=backend, auto_mine_transactions=True)
    return Web3(_LockedTesterProvider(tester)), backend
