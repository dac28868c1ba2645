"""Registry credentials and trust, where the containers tools (skopeo, podman, buildah) keep them.

Credentials (``containers-auth.json(5)``): ``$REGISTRY_AUTH_FILE`` alone when set, else
``${XDG_RUNTIME_DIR}/containers/auth.json``, ``${XDG_CONFIG_HOME:-~/.config}/containers/auth.json``
and ``~/.docker/config.json``, the first file with an entry for the registry winning. Inside
a file the most specific key wins: ``host/ns/repo``, then ``host/ns``, then ``host`` (also
spelled ``https://host`` or ``https://host/v1/`` by docker). ``docker login`` writes Docker
Hub as ``https://index.docker.io/v1/``, podman as ``docker.io``. Credential helpers
(``credHelpers``, ``credsStore``) are not run: log in with ``skopeo login``, which writes the file.

Trust: the CA certificates of ``<certs.d>/<host[:port]>/*.crt`` (``/etc/containers/certs.d``,
``/etc/docker/certs.d``, ``~/.config/containers/certs.d``) are added to the system ones, and a
``*.cert`` + ``*.key`` pair there is the client certificate, as for skopeo and podman.

A password is never logged, printed or put in an error message: :class:`Credentials` hides it
from ``repr`` and only the user name and the file it came from are ever shown.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from computeops_grid.images.errors import ImageError

log = logging.getLogger(__name__)

DOCKER_HUB_KEYS = ("docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")
SYSTEM_CERTS_DIRS = (Path("/etc/containers/certs.d"), Path("/etc/docker/certs.d"))


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    origin: str = ""  # the file they came from, for messages

    def describe(self) -> str:
        return f"user {self.username!r} from {self.origin}"


def auth_files() -> list[Path]:
    """The auth files to read, in order."""
    explicit = os.environ.get("REGISTRY_AUTH_FILE")
    if explicit:
        return [Path(explicit)]
    files = []
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        files.append(Path(runtime) / "containers" / "auth.json")
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    files += [Path(config) / "containers" / "auth.json", Path.home() / ".docker" / "config.json"]
    return files


def _keys(host: str, repository: str) -> list[str]:
    """auth.json keys that may hold ``host``'s credentials for ``repository``, most specific first."""
    hosts = list(DOCKER_HUB_KEYS) if host in DOCKER_HUB_KEYS else [host]
    parts = repository.split("/")
    keys = []
    for name in hosts:
        keys += ["/".join([name, *parts[:n]]) for n in range(len(parts), 0, -1)]
    for name in hosts:
        keys += [name, f"https://{name}", f"http://{name}", f"https://{name}/v1/", f"https://{name}/v2/"]
    return keys


def lookup(host: str, repository: str) -> Credentials | None:
    """Credentials for ``host``/``repository`` from the first auth file that has them."""
    for path in auth_files():
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            log.warning("%s: cannot read it as an auth file (%s); skipped", path, type(exc).__name__)
            continue
        auths = doc.get("auths") if isinstance(doc, dict) else None
        if not isinstance(auths, dict):
            continue
        for key in _keys(host, repository):
            entry = auths.get(key)
            if isinstance(entry, dict) and entry.get("auth"):
                return _decode(str(entry["auth"]), f"{path} ({key})")
        if doc.get("credHelpers") or doc.get("credsStore"):
            log.info("%s names credential helpers; they are not run (use skopeo login)", path)
    return None


def _decode(value: str, origin: str) -> Credentials:
    try:
        user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        sep = ""
    if not sep:
        raise ImageError(
            f"{origin}: the 'auth' value is not base64 of USER:PASSWORD",
            hint="log in again with skopeo login (or podman login), which writes it correctly",
        )
    return Credentials(user, password, origin)


def certs_files(host: str, dirs: tuple[Path, ...]) -> tuple[list[Path], tuple[Path, Path] | None]:
    """(CA files, client cert + key) for ``host`` (``name:port``) from the certs.d dirs."""
    cas: list[Path] = []
    client: tuple[Path, Path] | None = None
    for base in dirs:
        folder = base / host
        if not folder.is_dir():
            continue
        cas += sorted(folder.glob("*.crt"))
        for cert in sorted(folder.glob("*.cert")):
            key = cert.with_suffix(".key")
            if key.is_file() and client is None:
                client = (cert, key)
    return cas, client


def default_certs_dirs() -> tuple[Path, ...]:
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return (*SYSTEM_CERTS_DIRS, Path(config) / "containers" / "certs.d")


def tls_context(host: str, dirs: tuple[Path, ...]) -> ssl.SSLContext | None:
    """An SSL context trusting the system CAs plus ``host``'s certs.d CAs; None if it has none."""
    cas, client = certs_files(host, dirs)
    if not cas and client is None:
        return None
    context = ssl.create_default_context()
    try:
        for ca in cas:
            context.load_verify_locations(cafile=str(ca))
        if client is not None:
            context.load_cert_chain(str(client[0]), str(client[1]))
    except (OSError, ssl.SSLError) as exc:
        raise ImageError(
            f"cannot load the certificates for {host} ({exc})",
            hint=f"check the files in {', '.join(str(d / host) for d in dirs)}",
        ) from None
    log.debug("trusting %d extra CA file(s) for %s", len(cas), host)
    return context
