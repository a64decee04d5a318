"""A real EVM JSON-RPC node process for the external-chain path (``ledger.chain.devnode``): never a
mock — the point of these tests is a separate node speaking JSON-RPC over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger.chain.devnode import HardhatNode

EvmNode = HardhatNode


@pytest.fixture(scope="session")
def evm_node() -> Iterator[HardhatNode]:
    with HardhatNode() as node:
        yield node
