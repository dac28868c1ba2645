# typer commands take many options as arguments:
# ruff: noqa: PLR0917
"""``cops-grid image``: publish images in the unpacked.cern.ch layout, sync wishlists, list/rm/gc/verify,
recipes."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from computeops_grid import extras
from computeops_grid.cli import output
from computeops_grid.config import load_config
from computeops_grid.images import recipes
from computeops_grid.images.errors import ImageError, ImagesFailed
from computeops_grid.images.operations import cvmfs_root, publish_sources
from computeops_grid.images.repository import gc, list_images, remove
from computeops_grid.images.unpack import Limits, Policy
from computeops_grid.images.verify import verify

if TYPE_CHECKING:
    from computeops_grid.images.registry import RegistryOptions

app = typer.Typer(help="Publish container images unpacked (CVMFS layout) and convert recipes.")

REPO_ROOT = typer.Option(None, "--repo-root", help="Image repository (default: the configured image_root).")
JSON = typer.Option(False, "--json", help="Print JSON (the default when stdout is not a terminal).")
CVMFS_REPO = typer.Option(
    None, "--cvmfs-repo", help="Publish inside 'cvmfs_server transaction/publish' of this repository."
)
CERTS_DIR = typer.Option(
    None,
    "--certs-dir",
    help="Registry CAs as DIR/<host:port>/*.crt (default: /etc/containers/certs.d, /etc/docker/certs.d, "
    "~/.config/containers/certs.d). Credentials: auth.json, as written by skopeo/podman login.",
)
ON_UNSAFE = typer.Option(Policy.FAIL, "--on-unsafe", help="fail the publish, or skip unsafe entries.")
MAX_ENTRIES = typer.Option(Limits.max_entries, help="Tar-bomb limit: entries per layer.")
MAX_BYTES = typer.Option(Limits.max_bytes, help="Tar-bomb limit: uncompressed bytes per layer.")


def _root(repo_root: Optional[Path], cvmfs_repo: Optional[str] = None) -> Path:
    if repo_root is not None:
        return repo_root
    if cvmfs_repo:
        return cvmfs_root(cvmfs_repo)
    return load_config().images


@app.command()
def publish(
    sources: list[str] = typer.Argument(
        ...,
        help="oci:DIR, oci-archive:FILE, docker-archive:FILE, containers-storage:NAME, docker://REG/REPO:TAG "
        "(or http:// for a plain-HTTP registry). A wishlist: see 'image sync'.",
    ),
    repo_root: Optional[Path] = REPO_ROOT,
    name: Optional[str] = typer.Option(None, "--name", help="Publish as docker://REGISTRY/REPO:TAG."),
    on_unsafe: Policy = ON_UNSAFE,
    cvmfs_repo: Optional[str] = CVMFS_REPO,
    certs_dir: Optional[Path] = CERTS_DIR,
    max_entries: int = MAX_ENTRIES,
    max_bytes: int = MAX_BYTES,
    json_out: bool = JSON,
) -> None:
    """Publish images: the flat rootfs, layers and metadata, atomically."""
    root = _root(repo_root, cvmfs_repo)
    limits = Limits(max_entries=max_entries, max_bytes=max_bytes)
    registry = (
        _registry_options(certs_dir) if any(s.startswith(("docker://", "http")) for s in sources) else None
    )
    with output.progress_bar("publishing", total=1) as bar:

        def progress(what: str, done: int, total: int) -> None:
            bar.update(bar.task_ids[0], description=what, completed=done, total=max(total, 1))

        results = publish_sources(
            sources,
            root,
            name=name,
            policy=on_unsafe,
            limits=limits,
            cvmfs_repo=cvmfs_repo,
            progress=progress,
            registry=registry,
        )
    if output.want_json(json_out):
        output.print_json([r.to_json() for r in results])
        return
    for result in results:
        how = "unpacked" if result.unpacked else "unchanged, not unpacked"
        output.out.print(
            f"{result.ref.public_path} -> .flat/{result.config_digest[7:9]}/{result.config_digest[7:19]}... "
            f"({how}, {result.layers_new} new / {result.layers_reused} reused layers, {result.seconds:.2f}s)"
        )
        for refusal in result.refusals:
            verb = "neutralised" if refusal.neutralised else "skipped"
            output.info(f"  {verb}: {refusal.path}: {refusal.reason}")


def _registry_options(certs_dir: Optional[Path]) -> RegistryOptions:
    with extras.needed("images from a registry", "images"):
        from computeops_grid.images.registry import RegistryOptions  # noqa: PLC0415 - needs requests

    return RegistryOptions(certs_dirs=(certs_dir,)) if certs_dir else RegistryOptions()


@app.command()
def sync(
    wishlist: Path = typer.Argument(..., help="A DUCC wishlist (recipe.yaml); '*' in a tag is a wildcard."),
    repo_root: Optional[Path] = REPO_ROOT,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Say what would be published, updated and removed; fetch no layer."
    ),
    cvmfs_repo: Optional[str] = CVMFS_REPO,
    certs_dir: Optional[Path] = CERTS_DIR,
    transport: str = typer.Option(
        "docker",
        "--wishlist-from",
        help="The images come from: docker (their registries) or containers-storage.",
    ),
    storage: str = typer.Option(
        "", "--storage", help="containers-storage prefix, e.g. [overlay@/root+/run]."
    ),
    on_unsafe: Policy = ON_UNSAFE,
    max_entries: int = MAX_ENTRIES,
    max_bytes: int = MAX_BYTES,
    json_out: bool = JSON,
) -> None:
    """Sync a wishlist: publish what is new or changed, remove what left it, gc. One bad image never
    blocks the others; the summary names each, and the exit code says when some failed."""
    with extras.needed("`cops-grid image sync`", "images"):
        from computeops_grid.images.sync import SyncOptions, sync_wishlist  # noqa: PLC0415 - needs requests

    if transport not in ("docker", "containers-storage"):
        raise ImageError(f"--wishlist-from must be docker or containers-storage, not {transport!r}")
    options = SyncOptions(
        dry_run=dry_run,
        transport=transport,
        storage=storage,
        registry=_registry_options(certs_dir),
        policy=on_unsafe,
        limits=Limits(max_entries=max_entries, max_bytes=max_bytes),
        cvmfs_repo=cvmfs_repo,
    )
    with output.progress_bar("syncing", total=1) as bar:
        options.progress = lambda what, done, total: bar.update(bar.task_ids[0], description=what)
        options.on_outcome = lambda o: bar.update(bar.task_ids[0], description=f"{o.status.value} {o.name}")
        report = sync_wishlist(wishlist, _root(repo_root, cvmfs_repo), options)
    if output.want_json(json_out):
        output.print_json(report.to_json())
    else:
        for line in report.lines():
            output.out.print(line, markup=False)
    if report.failed:
        names = ", ".join(o.name for o in report.failed[:5]) + (", ..." if len(report.failed) > 5 else "")
        raise ImagesFailed(
            f"{len(report.failed)} of {len(report.outcomes)} images failed: {names}",
            hint="the others are published; the summary says why each failed; the next sync tries them again",
        )


@app.command("list")
def list_cmd(repo_root: Optional[Path] = REPO_ROOT, json_out: bool = JSON) -> None:
    """List published images."""
    images = list_images(_root(repo_root))
    if output.want_json(json_out):
        output.print_json([i.to_json() for i in images])
        return
    for info in images:
        state = "" if info.committed else "  (incomplete: run image gc)"
        output.out.print(f"{info.path}  sha256:{info.config_hex[:12]}  {info.layers} layers{state}")


@app.command()
def rm(
    names: list[str] = typer.Argument(..., help="Images to remove, e.g. docker://busybox:latest"),
    repo_root: Optional[Path] = REPO_ROOT,
) -> None:
    """Remove published names (data goes at the next 'image gc')."""
    root = _root(repo_root)
    for name in names:
        ref = remove(root, name)
        output.info(f"removed {ref.public_path}; run 'cops-grid image gc' to free space")


@app.command("gc")
def gc_cmd(repo_root: Optional[Path] = REPO_ROOT, json_out: bool = JSON) -> None:
    """Remove leftovers of crashed publishes and unreferenced flats and layers."""
    report = gc(_root(repo_root))
    if output.want_json(json_out):
        output.print_json({"removed": report.removed, "repaired": report.repaired})
        return
    output.out.print(f"removed {len(report.removed)} entries, repaired {len(report.repaired)} metadata dirs")


@app.command("verify")
def verify_cmd(
    names: Optional[list[str]] = typer.Argument(None, help="Images to check (default: all)."),
    repo_root: Optional[Path] = REPO_ROOT,
    fast: bool = typer.Option(False, "--fast", help="Compare sizes and modes, do not hash contents."),
    json_out: bool = JSON,
) -> None:
    """Check that published content matches its digests."""
    report = verify(_root(repo_root), names or None, fast=fast)
    if output.want_json(json_out):
        output.print_json(report.to_json())
    else:
        for problem in report.problems:
            output.out.print(problem)
        output.out.print(f"checked {len(report.checked)} images: {'ok' if report.ok else 'PROBLEMS'}")
    if not report.ok:
        raise ImageError(
            f"{len(report.problems)} problems found", hint="re-publish the image, or run image gc"
        )


@app.command()
def convert(
    recipe: Path = typer.Argument(..., help="A Dockerfile or a Singularity definition file."),
    to: Optional[str] = typer.Option(None, "--to", help="docker or singularity (default: the other one)."),
    out: Optional[Path] = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
) -> None:
    """Convert a Dockerfile to a Singularity definition, or back (spython)."""
    if to not in (None, "docker", "singularity"):
        raise ImageError(f"--to must be docker or singularity, not {to!r}")
    text = recipes.convert(recipe, to)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text)


@app.command()
def build(
    dockerfile: Path = typer.Argument(..., help="The Dockerfile (FROM scratch or a local image)."),
    name: str = typer.Option(..., "--name", help="Publish as docker://REGISTRY/REPO:TAG."),
    context: Optional[Path] = typer.Option(None, "--context", help="Build context (default: its dir)."),
    repo_root: Optional[Path] = REPO_ROOT,
    json_out: bool = JSON,
) -> None:
    """Build offline with buildah, then publish."""
    root = _root(repo_root)
    with tempfile.TemporaryDirectory(prefix="cops-build-") as work:
        archive = recipes.build(dockerfile, Path(work) / "image.tar", context=context)
        results = publish_sources([f"oci-archive:{archive}"], root, name=name)
    if output.want_json(json_out):
        output.print_json([r.to_json() for r in results])
    else:
        output.out.print(f"built and published {results[0].ref.public_path}")
