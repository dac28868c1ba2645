"""``cops-grid backends``: what is registered, configured and reachable."""

from __future__ import annotations

from typing import Any

from computeops_grid.backends.registry import backend_class, known_backends
from computeops_grid.errors import CopsError
from computeops_grid.logic.session import Session


def backend_overview(session: Session) -> list[dict[str, Any]]:
    rows = []
    for name in known_backends():
        row: dict[str, Any] = {"name": name, "configured": name in session.config.backends, "warnings": []}
        try:
            cls = backend_class(name)
            row["capabilities"] = sorted(c.value for c in cls.capabilities)
            health = session.backend(name).check()
            row.update(reachable=health.reachable, detail=health.detail, warnings=health.warnings)
        except CopsError as exc:
            row.update(reachable=False, detail=exc.message, capabilities=row.get("capabilities", []))
        rows.append(row)
    return rows
