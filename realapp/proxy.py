"""A TCP proxy in front of a service that can delay its responses (network delay).

Callers connect to the proxy's port; bytes go through unchanged. With ``delay_ms`` set, the
first chunk of each response (the first bytes from the service after bytes from the caller)
waits that long: the service's own server span does not see the delay, its callers' client
spans do, as with a slow network link or a congested sidecar.
"""
from __future__ import annotations

import socket
import threading
import time


class DelayProxy:
    def __init__(self, target_port: int, listen_port: int = 0) -> None:
        self.target_port = target_port
        self.delay_ms = 0.0
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", listen_port))
        self._sock.listen(256)
        self.port = self._sock.getsockname()[1]
        self._stopped = threading.Event()

    def start(self) -> "DelayProxy":
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        try:
            self._sock.close()
        except OSError:
            pass

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
        except OSError:
            client.close()
            return
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        awaiting = threading.Event()  # set: a request went up, its response has not started yet

        def up() -> None:
            try:
                while data := client.recv(65536):
                    awaiting.set()
                    upstream.sendall(data)
            except OSError:
                pass
            finally:
                _close(upstream)

        def down() -> None:
            try:
                while data := upstream.recv(65536):
                    if awaiting.is_set():
                        awaiting.clear()
                        if self.delay_ms > 0:
                            time.sleep(self.delay_ms / 1000)
                    client.sendall(data)
            except OSError:
                pass
            finally:
                _close(client)

        threading.Thread(target=up, daemon=True).start()
        down()


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()
