"""A TCP proxy that can be cut: the chain node "killed" as sharetrail sees it, without losing its state.

While cut, nothing listens on the proxy's port (a new connection is refused, as by a host whose
node process died) and every open connection is reset (``SO_LINGER`` 0: the peer gets RST, as when
the process dies mid-request). ``restore`` listens on the same port again and forwards as before.
The node behind it keeps running with its chain, as a consortium node with a persistent database
(Besu, Geth) comes back after a restart — whereas a restarted Hardhat node would start from an empty
chain, which is a different event (the chain lost), not an outage.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType

from tests.support.live import free_port


class CuttableProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._accepting: threading.Thread | None = None
        self.connections = 0

    # -- control ----------------------------------------------------------------------------------
    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        self._accepting = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._accepting.start()

    def cut(self) -> None:
        """Stop listening and reset every open connection."""
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, set()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for conn in conns:
            _reset(conn)
        if self._accepting is not None:
            self._accepting.join(timeout=10)
            self._accepting = None

    def restore(self) -> None:
        self.start()

    # -- forwarding -------------------------------------------------------------------------------
    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    _reset(client)
                    _reset(upstream)
                    return
                self._conns |= {client, upstream}
                self.connections += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        # One direction ended: end the pair (the other pump wakes up from its recv and finds
        # nothing left to close).
        with self._lock:
            mine = {src, dst} & self._conns
            self._conns -= mine
        for sock in mine:
            _close(sock)

    def close(self) -> None:
        self.cut()

    def __enter__(self) -> CuttableProxy:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _close(sock: socket.socket) -> None:
    """``shutdown`` first: it wakes a thread blocked in ``recv`` on the socket, which ``close`` does not."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def _reset(sock: socket.socket) -> None:
    """Close with RST (``SO_LINGER`` 0), as a dying process's sockets are."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    _close(sock)
