"""``cops-grid proxy init|info|destroy``: X.509/VOMS proxies for the grid backends."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from computeops_grid.cli.output import info, print_json, want_json
from computeops_grid.credentials.preflight import hm
from computeops_grid.credentials.proxy import (
    ProxyInfo,
    Tool,
    default_proxy_path,
    proxy_destroy,
    proxy_info,
    proxy_init,
)
from computeops_grid.errors import CredentialError, UsageError

app = typer.Typer(
    help="Make, show and remove X.509/VOMS proxies (voms-proxy-* or arcproxy).", add_completion=False
)

OUT = typer.Option("--out", "-o", help="Proxy file (default: $X509_USER_PROXY, else /tmp/x509up_u<uid>).")
TOOL = typer.Option(
    "--tool", help="Which client tools to use: voms (voms-proxy-*) or arcproxy (default: what is installed)."
)


def _tool(name: Optional[str]) -> Optional[Tool]:
    if name is None:
        return None
    if name not in ("voms", "arcproxy"):
        raise UsageError(f"--tool {name!r} is not one of: voms, arcproxy")
    return "voms" if name == "voms" else "arcproxy"


def _show(proxy: ProxyInfo) -> None:
    lines = [
        f"path      : {proxy.path}",
        f"identity  : {proxy.identity}",
        f"subject   : {proxy.subject}",
        f"time left : {hm(proxy.time_left)} h" + (" (expired)" if proxy.expired else ""),
    ]
    for ac in proxy.acs:
        lines.append(f"VO        : {ac.vo} ({hm(ac.time_left)} h left)")
        lines += [f"FQAN      : {fqan}" for fqan in ac.fqans]
    if not proxy.acs:
        lines.append("VO        : none (plain proxy)")
    for line in lines:
        typer.echo(line)


@app.command("init")
def init(  # noqa: PLR0917 - typer maps each CLI option to a parameter
    voms: Annotated[
        Optional[str], typer.Option("--voms", help="VO[:/group or /VO/Role=...] to get VOMS attributes for.")
    ] = None,
    valid: Annotated[
        str, typer.Option("--valid", help="Lifetime HH:MM of the proxy and its attributes.")
    ] = "12:00",
    out: Annotated[Optional[Path], OUT] = None,
    cert: Annotated[
        Optional[Path], typer.Option("--cert", help="User certificate (default: the tool's).")
    ] = None,
    key: Annotated[Optional[Path], typer.Option("--key", help="User key (default: the tool's).")] = None,
    tool: Annotated[Optional[str], TOOL] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Make a proxy from your certificate, with VOMS attributes when --voms is given."""
    made = proxy_init(voms=voms, valid=valid, path=out, cert=cert, key=key, tool=_tool(tool))
    if want_json(as_json):
        print_json(made.to_dict())
    else:
        _show(made)


@app.command("info")
def show(
    out: Annotated[Optional[Path], OUT] = None,
    tool: Annotated[Optional[str], TOOL] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the proxy: identity, VO, FQANs, time left. Exits 77 when it has expired."""
    proxy = proxy_info(out, tool=_tool(tool))
    if want_json(as_json):
        print_json(proxy.to_dict())
    else:
        _show(proxy)
    if proxy.expired:
        raise CredentialError(f"the proxy {proxy.path} has expired", hint="`cops-grid proxy init`")


@app.command("destroy")
def destroy(
    out: Annotated[Optional[Path], OUT] = None,
    tool: Annotated[Optional[str], TOOL] = None,
) -> None:
    """Remove the proxy file."""
    path = out or default_proxy_path()
    if proxy_destroy(path, tool=_tool(tool)):
        info(f"removed {path}")
    else:
        info(f"no proxy at {path}: nothing to remove")
