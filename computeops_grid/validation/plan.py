"""Probe plans: which probe scripts run at a site, with which arguments (from the campaign)."""

from __future__ import annotations

from typing import Any

from computeops_grid.errors import ConfigError
from computeops_grid.validation.campaign import Campaign, Site

PROBES = (
    "cvmfs",
    "runtime",
    "userns",
    "image_run",
    "binds",
    "scratch",
    "cpu",
    "memory",
    "gpu",
    "credentials",
)


def _pilot_args(campaign: Campaign, site: Site) -> list[str]:
    args = ["--image-root", site.image_root] if site.image_root else []
    if campaign.runtimes:
        args += ["--runtime", ",".join(campaign.runtimes)]
    return args


def _image_args(campaign: Campaign) -> list[str]:
    args: list[str] = []
    for image in campaign.images:
        args += ["--image", image.ref]
        if image.sha256:
            args += ["--sha256", f"{image.ref}={image.sha256}"]
    files = {image.file for image in campaign.images}
    if len(files) == 1:
        args += ["--file", files.pop()]
    return args


def probe_args(campaign: Campaign, site: Site) -> dict[str, list[str]]:
    """Arguments of every probe, thresholds included (probe name -> argv tail)."""
    t = campaign.thresholds
    repos = [a for r in campaign.repositories for a in ("--repo", r)]
    first = campaign.images[0].ref if campaign.images else None
    pilot = _pilot_args(campaign, site)
    cpu = ["--crit-cores", str(t.min_cores)]
    cpu += ["--require-level", t.cpu_level_required] if t.cpu_level_required else []
    cpu += ["--warn-level", t.cpu_level_wanted] if t.cpu_level_wanted else []
    creds = ["--require", campaign.credentials, "--warn-hours", str(t.credential_hours_warn)]
    creds += ["--crit-hours", str(t.credential_hours_crit)] + (["--vo", campaign.vo] if campaign.vo else [])
    args: dict[str, list[str]] = {
        "cvmfs": [*repos, "--cvmfs-root", site.cvmfs_root, "--warn-latency", str(t.cvmfs_latency_warn),
                  "--crit-latency", str(t.cvmfs_latency_crit)],
        "runtime": [*pilot, *(["--prefer", ",".join(campaign.runtimes)] if campaign.runtimes else [])],
        "userns": ["--warn-max", str(t.userns_max_warn)],
        "scratch": ["--warn-free", str(t.scratch_free_warn), "--crit-free", str(t.scratch_free_crit),
                    "--warn-throughput", str(t.scratch_write_warn),
                    "--crit-throughput", str(t.scratch_write_crit), "--size", str(t.scratch_test_size)],
        "cpu": cpu,
        "memory": ["--warn-per-core", str(t.mem_per_core_warn), "--crit-per-core", str(t.mem_per_core_crit)],
        "gpu": [*pilot, "--require", str(campaign.gpus),
                *(["--image", first] if first and campaign.gpus else [])],
        "credentials": creds,
    }  # fmt: skip
    if first:
        args["image_run"] = [*pilot, *_image_args(campaign), "--warn-time", str(t.image_time_warn),
                             "--crit-time", str(t.image_time_crit)]  # fmt: skip
        args["binds"] = [*pilot, "--image", first, "--repo", campaign.repositories[0]]
    return args


def build_plan(campaign: Campaign, site: Site) -> dict[str, Any]:
    """The plan the bundle's runner executes (JSON-ready)."""
    args = probe_args(campaign, site)
    wanted = campaign.probes or list(PROBES)
    unknown = sorted(set(wanted) - set(PROBES))
    if unknown:
        raise ConfigError(f"unknown probes {', '.join(unknown)}", hint=f"known: {', '.join(PROBES)}")
    entries = [
        {"name": name, "script": f"check_{name}.py", "args": args[name], "timeout": 600}
        for name in PROBES
        if name in wanted and name in args
    ]
    return {"campaign": campaign.name, "site": site.name, "probes": entries}
