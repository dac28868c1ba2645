"""``validate-site local``: run the probes on this machine directly (same runner as the bundle)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from computeops_grid import worker
from computeops_grid.validation.campaign import Campaign, Site
from computeops_grid.validation.plan import build_plan
from computeops_grid.validation.results import SiteResult, load_result

LOCAL_SITE = Site(name="local", backend="local")


def run_local(campaign: Campaign, site: Site = LOCAL_SITE, python: str = sys.executable) -> SiteResult:
    """Run every probe of the plan for ``site`` here and return the verdict."""
    plan = build_plan(campaign, site)
    source = worker.folder()
    with tempfile.TemporaryDirectory(prefix="cops-validate-") as tmp:
        work = Path(tmp)
        (work / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
        env = {**os.environ, "COPS_PILOT": str(worker.pilot())}
        argv = [python, str(source / "run_probes.py"), "--plan", str(work / "plan.json"),
                "--out", str(work / "result.json"), "--probes", str(source / "probes"),
                "--site", site.name]  # fmt: skip
        subprocess.run(argv, cwd=work, env=env, check=False, stdout=subprocess.DEVNULL)
        return load_result(work / "result.json", site.name)
