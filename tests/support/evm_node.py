"""A real EVM JSON-RPC node process for the external-chain path: Hardhat's node from npm
(``contracts/node_modules``, installed by scripts/setup). Started on a free loopback port, stopped
at the end. Never a mock: the point of these tests is a separate node speaking JSON-RPC over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
HARDHAT = CONTRACTS / "node_modules" / ".bin" / "hardhat"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _chain_id(url: str) -> int | None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return int(json.loads(resp.read())["result"], 16)
    except (OSError, ValueError, KeyError):
        return None


class EvmNode:
    """One ``hardhat node`` process; ``stop()``/``start()`` simulate an outage (state is lost by Hardhat
    on restart, so outage tests must keep the process and pause it instead: ``pause()``/``resume()``)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        if not HARDHAT.exists():
            raise RuntimeError(f"{HARDHAT} missing: run scripts/setup")
        env = {**os.environ, "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true"}
        self.proc = subprocess.Popen(
            [str(HARDHAT), "node", "--hostname", "127.0.0.1", "--port", str(self.port)],
            cwd=CONTRACTS,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while _chain_id(self.url) is None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hardhat node exited with {self.proc.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("hardhat node did not answer in time")
            time.sleep(0.2)

    def pause(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, 19)  # SIGSTOP: the node stops answering but keeps its state

    def resume(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, 18)  # SIGCONT

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture(scope="session")
def evm_node() -> Iterator[EvmNode]:
    node = EvmNode()
    node.start()
    try:
        yield node
    finally:
        node.stop()
