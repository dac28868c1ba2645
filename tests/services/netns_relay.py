"""A TCP relay from 127.0.0.1 in this network namespace into another one (for the storage tests).

``python -m tests.services.netns_relay PID PORT`` listens on 127.0.0.1 (an ephemeral port,
printed on stdout) in the namespace it was started in, then enters the network namespace of
process PID (``setns``, as root) and forwards every connection to 127.0.0.1:PORT there.

Why: Debian's XRootD 5.5.3 has no bind-address directive, it listens on every interface. It
runs in a private network namespace whose only interface is loopback, so nothing outside this
machine can reach it; the relay is the one way in, and it listens on loopback only. Backends
whose daemons run in the main namespace (slurmd, A-REX) then reach the storage as the local
backend does, at root://127.0.0.1:PORT. Bytes are forwarded unchanged (the XRootD protocol,
or TLS for WebDAV over HTTPS).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while chunk := src.recv(1 << 16):
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        for sock, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            with contextlib.suppress(OSError):
                sock.shutdown(how)


def _serve(client: socket.socket, port: int) -> None:
    try:
        upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError:
        client.close()  # the storage is down: the client sees its connection closed
        return
    upstream.settimeout(None)
    back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    back.start()
    _pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


def main() -> None:
    pid, port = int(sys.argv[1]), int(sys.argv[2])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns into the storage's network namespace failed")
    os.close(fd)
    print(listener.getsockname()[1], flush=True)
    while True:
        client, _addr = listener.accept()
        threading.Thread(target=_serve, args=(client, port), daemon=True).start()


if __name__ == "__main__":
    main()
