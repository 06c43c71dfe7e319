"""A loopback TCP relay that can be cut and restored: a real server taken away and brought back."""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpRelay:
    """Forwards connections from a loopback port to a target, until `stop()` cuts every one."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._flowing = threading.Event()
        self._flowing.set()

    def start(self) -> None:
        """Listen on the relay's port (the same one each time) and forward what arrives."""
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.05)
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    def hold(self) -> None:
        """Forward nothing more, in either direction, and cut nothing: a network gone silent."""
        self._flowing.clear()

    def release(self) -> None:
        """Forward again, what was held first."""
        self._flowing.set()

    def stop(self) -> None:
        """Stop listening and cut every forwarded connection, as a server that goes down would."""
        self._flowing.set()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._acceptor is not None:
            # Until its accept loop has seen the close, the port cannot be bound again.
            self._acceptor.join(timeout=5)
            self._acceptor = None
        with self._lock:
            cut, self._sockets = self._sockets, set()
        for sock in cut:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self._flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
