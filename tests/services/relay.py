"""A TCP relay between a client and a real service, able to drop the next response.

It stands in for a network that fails: it never parses or changes the (TLS) bytes.
With ``drop_next_response`` set, the first bytes the server sends back on an already
established connection are discarded and both sides are closed: the request reached
the service, the client never sees the answer.
"""

from __future__ import annotations

import select
import socket
import threading


class Relay:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("0.0.0.0", 0))
        self.port = int(self.listener.getsockname()[1])
        self.drop_next_response = False
        self.dropped = 0
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        sent_by_client = False
        with client, server:
            while True:
                ready, _, _ = select.select([client, server], [], [], 1.0)
                if self._stop:
                    return
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is server and self.drop_next_response and sent_by_client:
                        self.drop_next_response = False
                        self.dropped += 1
                        return
                    (server if sock is client else client).sendall(data)
                    sent_by_client = sent_by_client or sock is client

    def close(self) -> None:
        self._stop = True
        self.listener.close()
