"""Recipes: Dockerfile <-> Singularity definition (own converter), and offline builds with buildah."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

from computeops_grid.images import recipe_convert
from computeops_grid.images.errors import ImageError, ToolMissing

log = logging.getLogger(__name__)


def recipe_kind(path: Path) -> str:
    """``docker`` or ``singularity``, from the name, else from the first instruction."""
    name = path.name.lower()
    if name.startswith(("dockerfile", "containerfile")) or name.endswith((".dockerfile", ".containerfile")):
        return "docker"
    if name.endswith(".def") or name.startswith("singularity"):
        return "singularity"
    for line in path.read_text().splitlines():
        stripped = line.strip().lower()
        if stripped.startswith("bootstrap:"):
            return "singularity"
        if stripped.startswith("from "):
            return "docker"
    raise ImageError(f"{path}: cannot tell a Dockerfile from a Singularity definition", hint="use --to")


def convert(path: str | Path, to: str | None = None) -> str:
    """Convert a Dockerfile to a Singularity definition or back; return the text.

    The project's own converter (:mod:`computeops_grid.images.recipe_convert`): spython 0.3.14
    fails on its own ``spython-base`` output, on lower-case instructions and on runscripts.
    Errors name the file and the line."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"recipe {path} does not exist")
    source = recipe_kind(path)
    target = to or ("singularity" if source == "docker" else "docker")
    if target == source:
        raise ImageError(f"{path} is already a {source} recipe")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ImageError(f"{path}: cannot read it: {exc}") from None
    return recipe_convert.convert_text(path, text, source)


def buildah_argv(
    dockerfile: Path, context: Path, tag: str, *, storage: tuple[str, str] | None = None
) -> list[str]:
    """``buildah build`` offline: never pulls, chroot isolation (works as root without runc)."""
    argv = ["buildah"]
    if storage is not None:
        argv += ["--root", storage[0], "--runroot", storage[1]]
    return [
        *argv,
        "build",
        "--pull-never",
        "--isolation",
        "chroot",
        "-f",
        str(dockerfile),
        "-t",
        tag,
        str(context),
    ]


def build(
    dockerfile: str | Path,
    archive: Path,
    *,
    context: str | Path | None = None,
    tag: str = "localhost/cops-build:latest",
    storage: tuple[str, str] | None = None,
) -> Path:
    """Build ``dockerfile`` with buildah (offline) and write an oci-archive to ``archive``."""
    if shutil.which("buildah") is None:
        raise ToolMissing("buildah is needed to build images", hint="apt-get install buildah")
    dockerfile = Path(dockerfile)
    if not dockerfile.is_file():
        raise ImageError(f"Dockerfile {dockerfile} does not exist")
    ctx = Path(context) if context else dockerfile.parent
    base = ["buildah"] + (["--root", storage[0], "--runroot", storage[1]] if storage else [])
    steps = [
        buildah_argv(dockerfile, ctx, tag, storage=storage),
        [*base, "push", "--quiet", tag, f"oci-archive:{archive}:{tag.rpartition(':')[2] or 'latest'}"],
    ]
    for argv in steps:
        log.info("running %s", " ".join(argv))
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ImageError(
                f"{' '.join(argv[:3])} failed: {proc.stderr.strip()[-800:]}",
                hint="builds are offline: FROM scratch or an image already in local storage",
            )
    return archive
