"""X.509/VOMS proxies through the VOMS client tools (or ``arcproxy`` where that is installed).

``voms-proxy-init/info/destroy`` are preferred; ``arcproxy`` is the fallback (ARC client
installs often have only that). Every call is an argv list; the tools' output is parsed
into :class:`ProxyInfo`. ``X509_USER_PROXY`` names the proxy file (default
``/tmp/x509up_u<uid>``); ``X509_CERT_DIR``, ``X509_VOMS_DIR`` and the vomses file
(``VOMS_USERCONF`` for voms-proxy-init, ``X509_VOMSES`` for arcproxy) reach the tools through
their environment. A VOMS server's refusal, or one not reached, is one CredentialError naming
the VO (docs/notes/voms-server.md). Proxy contents are never logged, only paths.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from computeops_grid.backends.common.tools import ToolErrors, run_tool
from computeops_grid.errors import CredentialError, DeliveryUncertain, ToolMissing, UsageError

log = logging.getLogger(__name__)

Tool = Literal["voms", "arcproxy"]
TOOLS: dict[Tool, tuple[str, str, str]] = {  # init, info, destroy
    "voms": ("voms-proxy-init", "voms-proxy-info", "voms-proxy-destroy"),
    "arcproxy": ("arcproxy", "arcproxy", "arcproxy"),
}
_VALID = re.compile(r"^(\d{1,4}):([0-5]\d)$")
_ARC_DURATION = re.compile(r"(\d+)\s+(day|hour|minute|second)s?")
_ARC_UNITS = {"day": 86400, "hour": 3600, "minute": 60, "second": 1}


@dataclass(frozen=True)
class VomsAttributes:
    """One VOMS attribute certificate (AC) in a proxy."""

    vo: str
    fqans: tuple[str, ...] = ()
    time_left: int = 0  # seconds; 0 once expired
    issuer: str = ""
    uri: str = ""


@dataclass(frozen=True)
class ProxyInfo:
    """What ``voms-proxy-info -all`` / ``arcproxy -I`` say about a proxy file."""

    path: Path
    subject: str
    identity: str
    time_left: int  # seconds; 0 once expired
    proxy_type: str = ""
    bits: int | None = None
    acs: tuple[VomsAttributes, ...] = ()
    tool: str = ""

    @property
    def vos(self) -> tuple[str, ...]:
        return tuple(ac.vo for ac in self.acs)

    @property
    def vo(self) -> str | None:
        return self.acs[0].vo if self.acs else None

    @property
    def fqans(self) -> tuple[str, ...]:
        return tuple(f for ac in self.acs for f in ac.fqans)

    @property
    def expired(self) -> bool:
        return self.time_left <= 0

    def ac_for(self, vo: str) -> VomsAttributes | None:
        return next((ac for ac in self.acs if ac.vo == vo), None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(path=str(self.path), vo=self.vo, vos=list(self.vos), fqans=list(self.fqans))
        return data


def default_proxy_path(env: Mapping[str, str] | None = None) -> Path:
    """``$X509_USER_PROXY``, else the grid convention ``/tmp/x509up_u<uid>``."""
    env = os.environ if env is None else env
    return Path(env.get("X509_USER_PROXY") or f"/tmp/x509up_u{os.getuid()}")  # noqa: S108 - convention


def init_hint(vo: str | None = None, path: Path | None = None) -> str:
    """The command that makes a fresh proxy (the hint of every proxy error)."""
    argv = ["cops-grid", "proxy", "init"]
    if vo:
        argv += ["--voms", vo]
    if path is not None and path != default_proxy_path():
        argv += ["--out", str(path)]
    return "`" + " ".join(argv) + "`"


def pick_tool(prefer: Tool | None = None) -> Tool:
    """The VOMS tools when installed, else ``arcproxy``; ``prefer`` forces one."""
    order: Sequence[Tool] = (prefer,) if prefer else ("voms", "arcproxy")
    for tool in order:
        if all(shutil.which(exe) for exe in TOOLS[tool]):
            return tool
    wanted = " or ".join(TOOLS[t][1] for t in order)
    raise ToolMissing(
        f"{wanted} is not installed here",
        backend="proxy",
        hint="install the VOMS clients (Debian: voms-clients) or the ARC client (nordugrid-arc-client)",
    )


ERRORS = ToolErrors(
    family="proxy", install_hint="install voms-clients (or nordugrid-arc-client for arcproxy)"
)


def _run(
    argv: list[str], *, interactive: bool = False, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run a proxy tool; ``interactive`` leaves stdin to the user (pass phrase prompts)."""
    try:
        return run_tool(argv, ERRORS, timeout=timeout, interactive=interactive)
    except DeliveryUncertain:
        raise CredentialError(
            f"`{argv[0]}` did not finish within {timeout:.0f} s", hint="is the VOMS server reachable?"
        ) from None


def _last_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln.strip() for ln in (proc.stderr + "\n" + proc.stdout).splitlines()]
    useful = [ln for ln in lines if ln and not ln.startswith(("Cannot open file", "Function:", "..."))]
    errors = [ln for ln in useful if "ERROR" in ln or "not known" in ln or "rror" in ln]
    return (errors or useful or [f"exit status {proc.returncode}"])[-1]


# -- parsing ------------------------------------------------------------------------------


def hms_seconds(text: str) -> int:
    """``H:MM:SS`` (hours may exceed 24) as seconds."""
    parts = [int(p) for p in text.strip().split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    return parts[0] * 3600 + parts[1] * 60 + parts[2]


def arc_seconds(text: str) -> int:
    """arcproxy's ``1 day 2 hours 3 minutes 4 seconds`` (or ``... expired``) as seconds."""
    if "expired" in text.lower():
        return 0
    return sum(int(n) * _ARC_UNITS[unit] for n, unit in _ARC_DURATION.findall(text))


def _pairs(text: str, sep: str) -> list[tuple[str, str]]:
    pairs = []
    for line in text.splitlines():
        if sep in line:
            key, value = line.split(sep, 1)
            pairs.append((key.strip().lower(), value.strip()))
    return pairs


def parse_voms_info(text: str, path: Path) -> ProxyInfo:
    """Parse ``voms-proxy-info -all`` output."""
    head, *sections = re.split(r"^=== VO (\S+) extension information ===$", text, flags=re.M)
    proxy = dict(_pairs(head, " : "))
    acs = []
    for vo, body in zip(sections[::2], sections[1::2]):
        fields = _pairs(body, " : ")
        values = dict(fields)
        acs.append(
            VomsAttributes(
                vo=values.get("vo", vo),
                fqans=tuple(v for k, v in fields if k == "attribute" and v.startswith("/")),
                time_left=hms_seconds(values.get("timeleft", "0")),
                issuer=values.get("issuer", ""),
                uri=values.get("uri", ""),
            )
        )
    bits = re.match(r"\d+", proxy.get("strength", ""))
    return ProxyInfo(
        path=path,
        subject=proxy.get("subject", ""),
        identity=proxy.get("identity", ""),
        time_left=hms_seconds(proxy.get("timeleft", "0")),
        proxy_type=proxy.get("type", ""),
        bits=int(bits.group()) if bits else None,
        acs=tuple(acs),
        tool="voms-proxy-info",
    )


def parse_arcproxy_info(text: str, path: Path) -> ProxyInfo:
    """Parse ``arcproxy -I`` output (FQANs are shown without ``/Role=NULL/Capability=NULL``)."""
    head, *sections = re.split(r"^=+ AC extension information for VO (\S+) =+$", text, flags=re.M)
    proxy = dict(_pairs(head, ": "))
    acs = []
    for vo, body in zip(sections[::2], sections[1::2]):
        fields = _pairs(body, " : ")
        values = dict(fields)
        left = next((v for k, v in _pairs(body, ": ") if k == "time left for ac"), "")
        acs.append(
            VomsAttributes(
                vo=values.get("vo", vo),
                fqans=tuple(v for k, v in fields if k == "attribute" and v.startswith("/")),
                time_left=0 if "AC is invalid" in body else arc_seconds(left),
                issuer=values.get("issuer", ""),
                uri=values.get("uri", ""),
            )
        )
    bits = proxy.get("proxy key length", "")
    return ProxyInfo(
        path=path,
        subject=proxy.get("subject", ""),
        identity=proxy.get("identity", ""),
        time_left=arc_seconds(proxy.get("time left for proxy", "")),
        proxy_type=proxy.get("proxy type", ""),
        bits=int(bits) if bits.isdigit() else None,
        acs=tuple(acs),
        tool="arcproxy",
    )


# -- the three operations -------------------------------------------------------------------


def proxy_info(path: Path | None = None, *, tool: Tool | None = None) -> ProxyInfo:
    """Read a proxy with the installed tool; a missing or unreadable proxy is a CredentialError."""
    path = path or default_proxy_path()
    if not path.is_file():
        raise CredentialError(f"no proxy at {path}", hint=f"create one with {init_hint(path=path)}")
    chosen = pick_tool(tool)
    if chosen == "voms":
        proc = _run([TOOLS["voms"][1], "-all", "-file", str(path)])
    else:
        proc = _run(["arcproxy", "-I", "-P", str(path)])
    if proc.returncode != 0 or not proc.stdout.strip():
        raise CredentialError(
            f"{path} is not a usable proxy: {_last_error(proc)}",
            hint=f"make a new one with {init_hint(path=path)}",
        )
    parse = parse_voms_info if chosen == "voms" else parse_arcproxy_info
    return parse(proc.stdout, path)


def valid_seconds(valid: str) -> int:
    """``HH:MM`` (the ``--valid`` option) as seconds; a bad value is a UsageError."""
    match = _VALID.match(valid.strip())
    if not match or hms_seconds(valid + ":00") == 0:
        raise UsageError(
            f"--valid {valid!r} is not a duration HH:MM", hint="e.g. --valid 24:00 or --valid 1:30"
        )
    return int(match.group(1)) * 3600 + int(match.group(2)) * 60


def init_argv(
    tool: Tool, path: Path, *, voms: str | None, valid: str, cert: Path | None, key: Path | None
) -> list[str]:
    """The argv that makes an RFC 3820 proxy at ``path`` (VOMS AC for ``voms`` = ``VO[:/group]``)."""
    seconds = valid_seconds(valid)
    if tool == "voms":
        argv = [TOOLS["voms"][0], "-rfc", "-valid", valid.strip(), "-out", str(path)]
        argv += ["-voms", voms] if voms else []
        argv += ["-cert", str(cert)] if cert else []
        argv += ["-key", str(key)] if key else []
        return argv
    argv = ["arcproxy", "-P", str(path), "-c", f"validityPeriod={seconds}"]
    argv += ["-S", voms, "-c", f"vomsACvalidityPeriod={seconds}"] if voms else []
    argv += ["-C", str(cert)] if cert else []
    argv += ["-K", str(key)] if key else []
    return argv


def _init_hint(said: str) -> str:
    if "not known" in said or "vomses" in said.lower():
        return (
            "add the VO's line to ~/.voms/vomses or /etc/vomses (or name a vomses file in "
            "VOMS_USERCONF for voms-proxy-init, X509_VOMSES for arcproxy)"
        )
    if "certificate" in said.lower() or "usercert" in said or "key" in said.lower():
        return "put usercert.pem/userkey.pem in ~/.globus, or pass --cert and --key"
    return "rerun with --debug to see the tool's full output"


# What the init tools print about the VOMS server (voms-proxy-init, then arcproxy).
_IDENTITY = re.compile(r"^Your identity: (.+)$", re.M)
_CONTACTED = re.compile(r'^Contacting\s+(\S+) \[.*\] "[^"]*" Failed$', re.M)
_ARC_CONTACTED = re.compile(r"^Contacting VOMS server \(named [^)]*\): (\S+) on port: (\d+)$", re.M)
_ARC_COLLECTED = re.compile(r"^Collected error is:\s*\n\s*(.+)$", re.M)
_REST_CLOSED = "HTTP: GENERIC_ERROR (Connection was closed)"


def _voms_failure(output: str, vo: str) -> CredentialError | None:
    """The VOMS server's own refusal (``testvo: User unknown to this VO.``), or that it was not
    reached, as one message; None when the output says neither."""
    identity = (_IDENTITY.findall(output) or ["your certificate's subject"])[-1].strip()
    escaped = re.escape(vo)
    refusal = re.findall(rf"^Error: {escaped}\s*: (.+)$", output, re.M)  # voms-proxy-init
    refusal += re.findall(rf"VOMS: GENERIC_ERROR \({escaped}\s*: (.+)\)$", output, re.M)  # arcproxy
    if refusal:
        return CredentialError(
            f"the VOMS server of VO {vo} refused: {refusal[-1].strip()}",
            hint=f"ask the managers of VO {vo} to register {identity} with what --voms asks for, "
            "or pass --cert and --key of a registered certificate",
        )
    where = _CONTACTED.findall(output) or [":".join(m) for m in _ARC_CONTACTED.findall(output)]
    if where:
        collected = [c.strip() for c in _ARC_COLLECTED.findall(output)]
        detail = f": {collected[-1]}" if collected else ""
        return CredentialError(
            f"the VOMS server of VO {vo} at {where[-1]} could not be reached{detail}",
            hint="is it up? check the VO's line in vomses (VOMS_USERCONF / X509_VOMSES, ~/.voms/vomses)",
        )
    return None


def proxy_init(
    *,
    voms: str | None = None,
    valid: str = "12:00",
    path: Path | None = None,
    cert: Path | None = None,
    key: Path | None = None,
    tool: Tool | None = None,
) -> ProxyInfo:
    """Make a proxy (0600) and return what it carries; a VO asked for but absent is an error."""
    path = path or default_proxy_path()
    chosen = pick_tool(tool)
    argv = init_argv(chosen, path, voms=voms, valid=valid, cert=cert, key=key)
    path.parent.mkdir(parents=True, exist_ok=True)
    proc = _run(argv, interactive=True, timeout=300)
    vo = voms.split(":", 1)[0] if voms else None
    if vo and chosen == "arcproxy" and proc.returncode != 0 and _REST_CLOSED in proc.stdout + proc.stderr:
        # arcproxy asks over REST first; a VOMS server without it (Debian's voms 2.1) closes
        # the connection. Ask again in the legacy protocol, which every VOMS server speaks.
        argv.append("-B")
        proc = _run(argv, interactive=True, timeout=300)
    log.debug("%s said: %s", argv[0], proc.stderr.strip())
    if proc.returncode != 0 or not path.is_file():
        if vo and (refused := _voms_failure(proc.stdout + "\n" + proc.stderr, vo)):
            raise refused
        said = _last_error(proc)
        raise CredentialError(f"{argv[0]} could not make a proxy: {said}", hint=_init_hint(said))
    path.chmod(0o600)
    info = proxy_info(path, tool=chosen)
    if vo and vo not in info.vos:
        raise CredentialError(
            f"{argv[0]} made {path} but it carries no attributes of VO {vo}", hint=_init_hint("vomses")
        )
    return info


def proxy_destroy(path: Path | None = None, *, tool: Tool | None = None) -> bool:
    """Remove the proxy (through the tool, then unlink whatever is left); False if there was none."""
    path = path or default_proxy_path()
    if not path.exists():
        return False
    chosen = pick_tool(tool)
    if chosen == "voms":
        _run([TOOLS["voms"][2], "-file", str(path)])
    else:
        _run(["arcproxy", "-r", "-P", str(path)])
    if path.exists():  # the tools refuse files with odd permissions: remove it anyway
        path.unlink()
    return True
