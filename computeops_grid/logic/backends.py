"""``cops-grid backends``: every resource and backend type, its reachability and credentials.

The probes run in parallel, each with a time limit: one dead CE answers "no answer within
N s" instead of making the whole listing wait for it. A probe that overruns is left behind
in a daemon thread (it holds nothing the listing needs) and never delays the exit.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from computeops_grid import extras
from computeops_grid.backends.registry import backend_class, known_backends
from computeops_grid.errors import CopsError, CredentialError
from computeops_grid.logic.session import Session

PROBE_SECONDS = 10.0


def resource_names(session: Session) -> list[str]:
    """Named resources first, then each registered type (its defaults)."""
    named = sorted(session.config.resources)
    return named + [t for t in known_backends() if t not in session.config.resources]


def _probe(session: Session, name: str) -> dict[str, Any]:
    resource = session.config.resource(name)
    row: dict[str, Any] = {
        "name": name,
        "type": resource.type,
        "configured": name in session.config.resources or name in session.config.backends,
        "capabilities": [],
        "credential": "",
        "warnings": [],
    }
    started = time.monotonic()
    try:
        row["capabilities"] = sorted(c.value for c in backend_class(resource.type).capabilities)
        health = session.backend(name).check()
        row.update(
            reachable=health.reachable,
            detail=health.detail,
            warnings=health.warnings,
            credential=health.credential,
        )
    except CredentialError as exc:
        row.update(reachable=False, detail=exc.message, credential=exc.message)
    except CopsError as exc:  # an extra not installed too: its message names `pip install ...[extra]`
        row.update(reachable=False, detail=exc.message)
    except ModuleNotFoundError as exc:  # a backend importing an optional package late
        absent = extras.missing(exc, f"backend {resource.type!r}")
        row.update(reachable=False, detail=absent.message if absent else f"failed to load: {exc}")
    row["seconds"] = round(time.monotonic() - started, 3)
    return row


def backend_overview(session: Session, *, timeout: float = PROBE_SECONDS) -> list[dict[str, Any]]:
    """One row per resource, probed in parallel; a probe still running after ``timeout``
    seconds is reported unreachable."""
    names = resource_names(session)
    rows: dict[str, dict[str, Any]] = {}

    def run(name: str) -> None:
        rows[name] = _probe(session, name)

    threads = [threading.Thread(target=run, args=(n,), daemon=True, name=f"probe-{n}") for n in names]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    late = {
        "reachable": False,
        "detail": f"no answer within {timeout:.0f} s",
        "capabilities": [],
        "credential": "",
        "warnings": [],
        "seconds": timeout,
    }
    return [
        rows.get(n) or {"name": n, "type": session.config.resource(n).type, "configured": True, **late}
        for n in names
    ]
