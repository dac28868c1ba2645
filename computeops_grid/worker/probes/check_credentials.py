#!/usr/bin/env python3
"""Credentials: the X.509 proxy and/or WLCG token the job got, their lifetime and VO.

Proxy: ``$X509_USER_PROXY`` or /tmp/x509up_u<uid>; its end date from ``openssl x509``
(stdlib decoder otherwise), VO from ``voms-proxy-info --vo``. Token: found in the order
of the WLCG Bearer Token Discovery spec; expiry and ``wlcg.groups`` from its claims
(no signature check: the issuer checks that). File contents are never printed.
"""

import base64
import calendar
import json
import os
import shutil
import ssl
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import probelib
from probelib import CRITICAL, OK, ProbeError


def build_parser():
    p = probelib.parser(__doc__)
    p.add_argument("--require", choices=("any", "proxy", "token", "none"), default="any")
    p.add_argument("--vo", help="VO the credential must carry (VOMS VO or wlcg.groups /VO)")
    probelib.add_thresholds(p, "hours", "h", 24.0, 1.0, "lifetime below")
    return p


def proxy_path():
    path = os.environ.get("X509_USER_PROXY") or f"/tmp/x509up_u{os.getuid()}"
    return path if os.path.exists(path) else None


def token_source():
    """(description, token text) per WLCG Bearer Token Discovery, or (None, None)."""
    if os.environ.get("BEARER_TOKEN", "").strip():
        return "$BEARER_TOKEN", os.environ["BEARER_TOKEN"].strip()
    candidates = [os.environ.get("BEARER_TOKEN_FILE")]
    if os.environ.get("XDG_RUNTIME_DIR"):
        candidates.append(os.path.join(os.environ["XDG_RUNTIME_DIR"], f"bt_u{os.getuid()}"))
    candidates.append(f"/tmp/bt_u{os.getuid()}")
    for path in candidates:
        if path and os.path.isfile(path):
            with open(path) as handle:
                return path, handle.read().strip()
    return None, None


def proxy_end(path, timeout):
    """Seconds since the epoch when the proxy's first certificate expires."""
    openssl = shutil.which("openssl")
    if openssl:
        code, out, _err, _secs = probelib.run([openssl, "x509", "-noout", "-enddate", "-in", path], timeout)
        if code != 0 or "notAfter=" not in out:
            raise ProbeError(f"{path} is not a readable X.509 proxy")
        text = out.split("notAfter=", 1)[1].strip()
    else:  # pragma: no cover - stdlib decoder for nodes without openssl
        try:
            text = ssl._ssl._test_decode_cert(path)["notAfter"]  # type: ignore[attr-defined]
        except (ssl.SSLError, KeyError, OSError):
            raise ProbeError(f"{path} is not a readable X.509 proxy")
    return calendar.timegm(time.strptime(text.replace(" GMT", ""), "%b %d %H:%M:%S %Y"))


def proxy_vo(path, timeout):
    tool = shutil.which("voms-proxy-info")
    if not tool:
        return None
    code, out, _err, _secs = probelib.run([tool, "--file", path, "--vo"], timeout)
    return out.strip().splitlines()[0] if code == 0 and out.strip() else ""


def token_claims(text):
    parts = text.split(".")
    if len(parts) != 3:
        raise ProbeError("the bearer token is not a JWT (header.payload.signature)")
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise ProbeError("the bearer token's claims cannot be decoded")
    if not isinstance(claims, dict):
        raise ProbeError("the bearer token's claims are not a JSON object")
    return claims


def judge(kind, hours, vo_found, args, result):
    result.perf(kind + "_hours", round(hours, 2), "", args.warn_hours, args.crit_hours)
    state = probelib.below(hours, args.warn_hours, args.crit_hours)
    text = f"{kind} expired" if hours <= 0 else f"{kind} valid {hours:.1f} h"
    result.add(state, text)
    if args.vo and vo_found is None:
        result.add(probelib.UNKNOWN, f"{kind}: cannot read its VO on this node")
    elif args.vo and vo_found != args.vo:
        result.add(CRITICAL, "{} carries VO {!r}, {!r} required".format(kind, vo_found or "none", args.vo))


def check_proxy(path, args, result):
    if os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        result.add(CRITICAL, f"proxy {path} is readable by others (must be 0600)")
    hours = (proxy_end(path, args.timeout) - time.time()) / 3600.0
    judge("proxy", hours, proxy_vo(path, args.timeout) if args.vo else "", args, result)
    result.detail(f"proxy file {path}")


def check_token(source, text, args, result):
    claims = token_claims(text)
    if "exp" not in claims:
        raise ProbeError("the bearer token has no exp claim")
    groups = [str(g).strip("/").split("/")[0] for g in claims.get("wlcg.groups", [])]
    vo = args.vo if args.vo in groups else (groups[0] if groups else "")
    judge("token", (float(claims["exp"]) - time.time()) / 3600.0, vo, args, result)
    result.detail("token from {} issued by {}".format(source, claims.get("iss", "?")))


def check(args, result):
    proxy = proxy_path()
    source, token = token_source()
    if proxy and args.require in ("any", "proxy", "none"):
        check_proxy(proxy, args, result)
    if token and args.require in ("any", "token", "none"):
        check_token(source, token, args, result)
    missing = (args.require == "proxy" and not proxy) or (args.require == "token" and not token)
    if missing or (args.require == "any" and not proxy and not token):
        result.add(CRITICAL, "no {} found".format("credential" if args.require == "any" else args.require))
    elif not proxy and not token:
        result.add(OK, "no credential on this node (none required)")


if __name__ == "__main__":
    probelib.main("CREDENTIALS", build_parser, check)
