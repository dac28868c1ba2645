"""``image sync`` against real registries on loopback (Debian's docker-registry, images pushed
with skopeo): wildcards through a paged tag list, TLS + basic auth, plain HTTP, a missing tag
among good ones, a registry that goes down mid-sync, 429, removal + gc, and unchanged
images recognised with ``HEAD`` alone."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from computeops_grid.errors import ExitCode
from computeops_grid.images.operations import publish_sources
from computeops_grid.images.registry import Backoff, RegistryOptions
from computeops_grid.images.summary import Outcome, Status, SyncReport
from computeops_grid.images.sync import SyncOptions, sync_wishlist
from computeops_grid.images.verify import verify
from tests.conftest import Cli
from tests.services.registry import PASSWORD, RegistryFront, start_registry

from .conftest import LoopbackRegistries
from .helpers import member, oci_layout

pytestmark = [pytest.mark.service, pytest.mark.slow]
FAST = Backoff(attempts=3, first=0.01, cap=0.05)


@pytest.fixture(autouse=True)
def no_host_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the auth file a test writes is read (never the host's ~/.config/containers)."""
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "no-auth.json"))


@pytest.fixture
def front(registries: LoopbackRegistries) -> Iterator[RegistryFront]:
    server = RegistryFront(registries.plain).start()
    yield server
    server.stop()


def _wishlist(path: Path, entries: list[str]) -> Path:
    path.write_text(
        json.dumps({"version": 1, "user": "cops", "cvmfs_repo": "unpacked.example.org", "input": entries})
    )
    return path


def _sync(wishlist: Path, repo: Path, **options: object) -> SyncReport:
    registry = options.pop("registry", RegistryOptions(certs_dirs=(), backoff=FAST, timeout=10))
    return sync_wishlist(wishlist, repo, SyncOptions(registry=registry, **options))  # type: ignore[arg-type]


def _by_status(report: SyncReport) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for outcome in report.outcomes:
        found.setdefault(outcome.status.value, set()).add(outcome.name)
    return found


def _failure(report: SyncReport, name_part: str) -> Outcome:
    return next(o for o in report.failed if name_part in o.name)


def test_wildcards_through_a_paged_tag_list(
    registries: LoopbackRegistries, front: RegistryFront, tmp_path: Path
) -> None:
    for tag in ("v1", "v1.1", "v2", "w1", "x9"):
        registries.push(registries.plain, f"bars/good:{tag}")
    front.page_size = 2
    wishlist = _wishlist(
        tmp_path / "w.yaml", [f"http://{front.host}/bars/good:v1*", f"http://{front.host}/bars/good:w*"]
    )
    report = _sync(wishlist, tmp_path / "repo")
    assert _by_status(report) == {"published": {f"{front.host}/bars/good:{t}" for t in ("v1", "v1.1", "w1")}}
    pages = [path for method, path in front.requests if "/tags/list" in path]
    assert len(pages) == 6 and sum("last=" in p for p in pages) == 4, pages  # 5 tags, 2 a page, twice
    assert (
        tmp_path / "repo" / front.host / "bars" / "good:v1.1" / "data" / "marker.txt"
    ).read_text() == "bars/good:v1.1"
    assert verify(tmp_path / "repo").ok


def test_tls_and_basic_auth_from_auth_json(
    registries: LoopbackRegistries,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secure = registries.secure
    registries.push(secure, "secure/app:1")
    wishlist = _wishlist(tmp_path / "w.yaml", [f"https://{secure.host}/secure/app:1"])
    trusted = RegistryOptions(certs_dirs=(secure.certs_dir,), backoff=FAST)
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(secure.auth_json(tmp_path / "auth.json")))
    report = _sync(wishlist, tmp_path / "repo", registry=trusted)
    assert _by_status(report) == {"published": {f"{secure.host}/secure/app:1"}}
    assert verify(tmp_path / "repo").ok
    untrusted = _failure(_sync(wishlist, tmp_path / "r2"), "secure/app")
    assert untrusted.kind == "tls" and "not trusted" in untrusted.message and "certs.d" in untrusted.hint
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(secure.auth_json(tmp_path / "bad.json", password="wrong")))
    refused = _failure(_sync(wishlist, tmp_path / "r3", registry=trusted), "secure/app")
    assert refused.kind == "auth" and "refused the credentials of user 'cops'" in refused.message
    assert "skopeo login" in refused.hint
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "none.json"))
    anonymous = _failure(_sync(wishlist, tmp_path / "r4", registry=trusted), "secure/app")
    assert anonymous.kind == "auth" and "auth.json has none" in anonymous.message
    plain_to_tls = _failure(
        _sync(_wishlist(tmp_path / "p.yaml", [f"http://{secure.host}/secure/app:1"]), tmp_path / "r5"), "app"
    )
    assert plain_to_tls.kind == "tls" and "https://" in plain_to_tls.hint
    everything = (
        caplog.text + repr(report.to_json()) + repr([o.to_json() for o in (untrusted, refused, anonymous)])
    )
    assert PASSWORD not in everything and "wrong" not in everything


def test_plain_http_and_a_missing_tag_among_good_ones(registries: LoopbackRegistries, tmp_path: Path) -> None:
    """Through the real CLI: the good images are published, the summary names the missing ones,
    the exit code says some failed; ``image verify`` passes."""
    plain = registries.plain
    for tag in ("v1", "v2"):
        registries.push(plain, f"mixed/good:{tag}")
    entries = [f"http://{plain.host}/mixed/good:v1", f"http://{plain.host}/mixed/good:nope",
               f"http://{plain.host}/mixed/absent:1", f"http://{plain.host}/mixed/good:v2",
               f"https://{plain.host}/mixed/good:v2"]  # fmt: skip
    wishlist = _wishlist(tmp_path / "w.yaml", entries)
    cli, repo = Cli(tmp_path), str(tmp_path / "repo")
    result = cli("image", "sync", str(wishlist), "--repo-root", repo, "--json")
    assert result.code == ExitCode.IMAGES_FAILED, result.stderr
    summary = result.json()
    assert isinstance(summary, dict)
    status = {i["name"]: (i["status"], i.get("error", {}).get("kind")) for i in summary["images"]}
    assert status == {
        f"{plain.host}/mixed/good:v1": ("published", None),
        f"{plain.host}/mixed/good:v2": ("published", None),  # the https:// duplicate is the same name
        f"{plain.host}/mixed/good:nope": ("failed", "not-found"),
        f"{plain.host}/mixed/absent:1": ("failed", "not-found"),
    }
    assert "3 of" not in result.stderr and "2 of 4 images failed" in result.stderr
    assert "mixed/good:nope" in result.stderr
    again = _sync(wishlist, Path(repo))  # the text summary (the CLI prints it on a terminal)
    text = "\n".join(again.lines())
    assert f"FAILED     {plain.host}/mixed/good:nope: {plain.host}/mixed/good has no tag nope" in text
    assert "hint: its tags: v1, v2" in text
    assert f"FAILED     {plain.host}/mixed/absent:1: {plain.host} has no repository mixed/absent" in text
    assert text.endswith("s") and "2 unchanged, 2 failed" in text
    https_entry = _failure(_sync(_wishlist(tmp_path / "s.yaml", entries[-1:]), tmp_path / "r2"), "good:v2")
    assert https_entry.kind == "tls" and "plain HTTP" in https_entry.message and "http://" in https_entry.hint
    assert cli("image", "verify", "--repo-root", repo).code == 0


def test_unchanged_resync_sends_heads_only_and_a_moved_tag_republishes_only_it(
    registries: LoopbackRegistries, front: RegistryFront, tmp_path: Path
) -> None:
    registries.push(registries.plain, "move/a:1")
    registries.push(registries.plain, "move/b:1")
    wishlist = _wishlist(
        tmp_path / "w.yaml", [f"http://{front.host}/move/a:1", f"http://{front.host}/move/b:1"]
    )
    repo = tmp_path / "repo"
    assert _by_status(_sync(wishlist, repo)) == {
        "published": {f"{front.host}/move/a:1", f"{front.host}/move/b:1"}
    }
    front.requests.clear()
    assert _by_status(_sync(wishlist, repo)) == {
        "unchanged": {f"{front.host}/move/a:1", f"{front.host}/move/b:1"}
    }
    assert {method for method, path in front.requests if path != "/v2/"} == {"HEAD"}, front.requests
    registries.push(registries.plain, "move/b:1", marker="b moved")
    front.requests.clear()
    report = _sync(wishlist, repo)
    assert _by_status(report) == {
        "unchanged": {f"{front.host}/move/a:1"},
        "updated": {f"{front.host}/move/b:1"},
    }
    moved = next(o for o in report.outcomes if o.status is Status.UPDATED)
    assert (moved.layers_new, moved.layers_reused) == (1, 1)  # the busybox base layer is not fetched again
    blobs = [path for method, path in front.requests if "/blobs/" in path]
    assert len(blobs) == 2 and all("/move/b/" in p for p in blobs)  # its config and its new layer
    assert report.gc_removed > 0  # the flat b:1 pointed to before
    assert (repo / front.host / "move" / "b:1" / "data" / "marker.txt").read_text() == "b moved"
    assert len(list((repo / ".flat").glob("??/*"))) == 2
    assert verify(repo).ok


def test_registry_down_mid_sync_keeps_what_was_published_valid(
    registries: LoopbackRegistries, tmp_path: Path
) -> None:
    own = start_registry(tmp_path / "registry")
    try:
        for name in ("down/a:1", "down/b:1", "down/c:1"):
            registries.push(own, name)
        wishlist = _wishlist(tmp_path / "w.yaml", [f"http://{own.host}/down/{n}:1" for n in "abc"])
        repo = tmp_path / "repo"

        def stop_after_first(outcome: Outcome) -> None:
            if outcome.status is Status.PUBLISHED:
                own.stop()

        report = _sync(wishlist, repo, on_outcome=stop_after_first)
        assert _by_status(report) == {
            "published": {f"{own.host}/down/a:1"}, "failed": {f"{own.host}/down/b:1", f"{own.host}/down/c:1"}
        }  # fmt: skip
        assert {o.kind for o in report.failed} == {"unreachable"}
        assert "connection refused" in _failure(report, "down/b").message
        assert "given up earlier" in _failure(report, "down/c").message  # no second round of retries
        assert verify(repo).ok
        assert Cli(tmp_path)("image", "verify", "--repo-root", str(repo)).code == 0
        assert not list((repo / ".cops" / "tmp").iterdir())
        own.start()
        again = _sync(wishlist, repo)
        assert _by_status(again) == {
            "unchanged": {f"{own.host}/down/a:1"},
            "published": {f"{own.host}/down/b:1", f"{own.host}/down/c:1"},
        }
        assert verify(repo).ok
    finally:
        own.stop()


def test_a_transfer_cut_halfway_fails_that_image_alone(
    registries: LoopbackRegistries, front: RegistryFront, tmp_path: Path
) -> None:
    registries.push(registries.plain, "cut/a:1")
    repo = tmp_path / "repo"
    publish_sources([f"http://{front.host}/cut/a:1"], repo)  # a registry image as a SOURCE, too
    registries.push(registries.plain, "cut/b:1", base="another base layer")
    wishlist = _wishlist(tmp_path / "w.yaml", [f"http://{front.host}/cut/{n}:1" for n in "ab"])
    front.cut_blobs_over = 10_000
    report = _sync(wishlist, repo)
    assert _by_status(report) == {"unchanged": {f"{front.host}/cut/a:1"}, "failed": {f"{front.host}/cut/b:1"}}
    cut = _failure(report, "cut/b")
    assert cut.kind == "unreachable" and "broke while reading blob" in cut.message
    assert verify(repo).ok and not list((repo / ".cops" / "tmp").iterdir())
    assert not (repo / front.host / "cut" / "b:1").exists()


def test_429_is_retried_with_backoff(
    registries: LoopbackRegistries, front: RegistryFront, tmp_path: Path
) -> None:
    registries.push(registries.plain, "busy/a:1")
    wishlist = _wishlist(tmp_path / "w.yaml", [f"http://{front.host}/busy/a:1"])
    front.throttle = 2
    assert _by_status(_sync(wishlist, tmp_path / "repo")) == {"published": {f"{front.host}/busy/a:1"}}
    heads = [m for m, p in front.requests if p.endswith("/manifests/1") and m == "HEAD"]
    assert len(heads) == 3  # two 429 answers, then the digest
    front.throttle = 10**6
    limited = _failure(_sync(wishlist, tmp_path / "r2"), "busy/a")
    assert limited.kind == "rate-limited" and "429" in limited.message


def test_removed_entries_are_removed_and_collected(
    registries: LoopbackRegistries, front: RegistryFront, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("rm/a:1", "rm/b:1", "rm/b:2"):
        registries.push(registries.plain, name)
    host = front.host
    repo = tmp_path / "repo"
    wishlist = _wishlist(tmp_path / "w.yaml", [f"http://{host}/rm/a:1", f"http://{host}/rm/b:*"])
    assert _by_status(_sync(wishlist, repo)) == {
        "published": {f"{host}/rm/a:1", f"{host}/rm/b:1", f"{host}/rm/b:2"}
    }
    hand = oci_layout(tmp_path / "hand", [[member("by-hand", data=b"kept")]])
    publish_sources([f"oci:{hand}"], repo, name=f"docker://{host}/rm/hand:1")  # no wishlist owns it
    layers_before = set(os.listdir(repo / ".layers"))
    # the registry cannot list the tags (rate limited): the names the wildcard may cover stay
    front.throttle = 10**6
    unsure = _sync(wishlist, repo)
    assert _by_status(unsure) == {"failed": {f"{host}/rm/a:1", f"http://{host}/rm/b:*"}}
    assert (repo / host / "rm" / "b:2").is_symlink() and any(
        "their tags could not be listed" in n for n in unsure.notes
    )
    front.throttle = 0
    _wishlist(wishlist, [f"http://{host}/rm/a:1"])
    dry = _sync(wishlist, repo, dry_run=True)
    assert _by_status(dry) == {
        "unchanged": {f"{host}/rm/a:1"},
        "removed": {f"{host}/rm/b:1", f"{host}/rm/b:2"},
    }
    assert (repo / host / "rm" / "b:1").is_symlink() and dry.lines()[0].startswith("would remove")
    flats = {p.name: os.readlink(repo / host / "rm" / p.name) for p in (repo / host / "rm").iterdir()}
    deleted: list[str] = []  # what gc deletes in place: never a flat or a layer still in sight
    real_rmtree = shutil.rmtree
    monkeypatch.setattr(shutil, "rmtree", lambda p, **kw: (deleted.append(str(p)), real_rmtree(p, **kw)))
    report = _sync(wishlist, repo)
    assert deleted and not [p for p in deleted if "/.flat/" in p or "/.layers/" in p], deleted
    assert _by_status(report) == {
        "unchanged": {f"{host}/rm/a:1"},
        "removed": {f"{host}/rm/b:1", f"{host}/rm/b:2"},
    }
    assert sorted(p.name for p in (repo / host / "rm").iterdir()) == ["a:1", "hand:1"]
    assert not (repo / ".metadata" / host / "rm" / "b:1").exists()
    for name in ("b:1", "b:2"):
        assert not (repo / host / "rm" / flats[name]).exists(), "the flat of a removed name stays"
    assert len(list((repo / ".layers").glob("??/*/layerfs"))) == 3  # busybox (shared), a's own, hand's
    assert set(os.listdir(repo / ".layers")) <= layers_before
    assert not list((repo / ".cops" / "trash").glob("*"))
    assert verify(repo).ok
