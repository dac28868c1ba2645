"""The bundle: probes + pilot wrapper + runner + plan in one zipapp, shipped as one job's input.

``python3 cops-validation.pyz`` on the worker node extracts itself into the job's scratch,
runs every probe of the plan and writes ``validation-result.json`` (see run_probes.py).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

from computeops_grid import worker

BUNDLE_NAME = "cops-validation.pyz"
RESULT_NAME = "validation-result.json"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same inputs give the same bundle


def _add(archive: zipfile.ZipFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.external_attr = (0o100000 | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def build_bundle(plan: dict[str, Any], dest: Path) -> Path:
    """Write the zipapp to ``dest`` (a file path) atomically and return it."""
    source = worker.folder()
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    with zipfile.ZipFile(tmp, "w") as archive:
        _add(archive, "__main__.py", (source / "run_probes.py").read_bytes())
        _add(archive, "plan.json", json.dumps(plan, indent=1, sort_keys=True).encode())
        _add(archive, "cops_pilot.py", worker.pilot().read_bytes(), 0o755)
        for probe in sorted((source / "probes").glob("*.py")):
            _add(archive, f"probes/{probe.name}", probe.read_bytes(), 0o755)
    with open(tmp, "r+b") as handle:  # a zipapp may start with a shebang line
        data = handle.read()
        handle.seek(0)
        handle.write(b"#!/usr/bin/env python3\n" + data)
    tmp.chmod(0o755)
    tmp.replace(dest)
    return dest
