"""Campaign sites name a configured resource or define their own CE inline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from computeops_grid.config import Config
from computeops_grid.validation.campaign import Site, load_campaign
from tests.conftest import ROOT, Cli, configure_backend

EXAMPLE = ROOT / "site-validation" / "campaigns" / "example.yaml"


def test_an_inline_site_carries_its_type_and_settings() -> None:
    site = Site.model_validate({"name": "x", "type": "arc", "ce": "ce.example.org", "queue": "q", "vo": "v"})
    assert site.type == "arc" and site.backend is None
    assert site.settings == {"ce": "ce.example.org", "vo": "v"}  # queue stays the site's own option
    assert site.queue == "q"


@pytest.mark.parametrize(
    "body",
    [{"name": "x"}, {"name": "x", "backend": "arc", "type": "arc"}],
    ids=["neither", "both"],
)
def test_a_site_names_its_resource_one_way(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="either `backend:`"):
        Site.model_validate(body)


def test_a_site_without_type_keeps_refusing_unknown_keys() -> None:
    with pytest.raises(ValidationError, match="ce"):
        Site.model_validate({"name": "x", "backend": "arc", "ce": "ce.example.org"})


def test_inline_sites_become_resources_kept_for_later_commands(cops_home: Path) -> None:
    campaign = load_campaign(EXAMPLE)
    config = Config()
    campaign.register(config)
    names = {s.name: campaign.resource_of(s) for s in campaign.sites}
    assert names["laptop"] == "local" and names["grid-ce"] == "example.grid-ce"
    resource = config.resource(names["grid-ce-2"])
    assert (resource.type, resource.settings["ce"]) == ("arc", "arc2.example.org")
    later = Config()  # a later command (status, cancel, get) that never read the campaign
    assert later.resource("example.grid-ce").settings["ce"] == "arc.example.org"
    kept = cops_home / "resources.d" / "example.grid-ce.json"
    assert kept.stat().st_mode & 0o077 == 0


@pytest.mark.service
def test_the_example_campaign_as_written_gives_each_site_its_own_ce(
    cli: Cli,
    slurm_settings: dict[str, Any],
    good_proxy: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    configure_backend(cli.home, "slurm", slurm_settings)
    monkeypatch.setenv("X509_USER_PROXY", str(good_proxy))
    ran = cli("validate-site", "run", str(EXAMPLE), "--json", timeout=180)
    assert ran.code == 0, ran.stderr
    answers = ran.json()
    assert isinstance(answers, dict)
    assert list(answers) == ["laptop", "lab-cluster", "grid-ce", "grid-ce-2"]
    jobs = {site: a["job"] or a["refused"] for site, a in answers.items()}
    assert "example.vo" in jobs["grid-ce-2"]  # refused: its own VO, which the proxy does not carry
    stored = {j["id"]: j for j in cli("list", "--json").json()}  # type: ignore[union-attr]
    assert {i: j["backend"] for i, j in stored.items()} == {
        jobs["laptop"]: "local", jobs["lab-cluster"]: "slurm", jobs["grid-ce"]: "example.grid-ce"
    }  # fmt: skip
    assert stored[jobs["grid-ce"]]["state"] == "new"  # its own CE cannot be reached from here: kept
    report = cli("validate-site", "report", str(EXAMPLE), "--json", "-o", str(tmp_path / "r"), timeout=120)
    assert report.code == 0, report.stderr
    sites = {s["site"]: s for s in report.json()["sites"]}  # type: ignore[index]
    assert sites["grid-ce"]["verdict"] == "unreachable"
    assert "https://arc.example.org/arex" in sites["grid-ce"]["message"]
    assert sites["grid-ce-2"]["verdict"] == "unreachable" and "example.vo" in sites["grid-ce-2"]["message"]
    # the two reachable sites ran (no /cvmfs here: they may fail their probes, which is a verdict)
    assert {sites[s]["verdict"] for s in ("laptop", "lab-cluster")} <= {
        "pending",
        "certified",
        "degraded",
        "failed",
    }
    assert cli("cancel", jobs["laptop"], jobs["lab-cluster"]).code in (0, 9)
