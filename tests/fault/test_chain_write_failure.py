"""The embedded chain cannot write its block (a full disk): the transaction fails with
``chain_write_failed`` and the block is not seen afterwards — not by this process, not after a
restart — so nothing (an anchor's ``latest()``, a receipt) can report a block that a crash loses.

The regression: a block whose SQLite commit failed stayed in py-evm's memory; after the disk came
back the anchoring loop read it through ``latest()``, recorded its checkpoint in the store, and a
``kill -9`` left the store naming a block the chain on disk never had (``sharetrail verify`` then
failed with BlockNotFound). Found by ``test_store_unavailable``'s full-disk scenario.

The write failure is real: this process's RLIMIT_FSIZE is lowered to 0 around one transaction, so
SQLite's ``write(2)`` fails (EFBIG; CPython ignores SIGXFSZ).
"""

from __future__ import annotations

import resource
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from eth_account import Account

from ledger.chain.client import Chain
from ledger.errors import ChainError


@contextmanager
def _no_file_writes() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_a_block_that_cannot_be_written_is_not_seen(tmp_path: Path) -> None:
    funder = Account.create()
    to = Account.create().address
    path = tmp_path / "chain.sqlite"
    chain = Chain.embedded(path, funder.address)
    try:
        chain.send_value(funder, to, 1)
        block = chain.block_number()
        with _no_file_writes(), pytest.raises(ChainError) as info:
            chain.send_value(funder, to, 10)
        assert info.value.code == "chain_write_failed"
        assert chain.block_number() == block, "the unwritten block is not seen"
        assert chain.balance(to) == 1
        chain.send_value(funder, to, 100)  # the same nonce again: the failed transfer never happened
        assert chain.block_number() == block + 1
        assert chain.balance(to) == 101
    finally:
        chain.close()
    reopened = Chain.embedded(path, funder.address)
    try:
        assert reopened.block_number() == block + 1
        assert reopened.balance(to) == 101
    finally:
        reopened.close()
