"""Dockerfile <-> Singularity definition round trips on the corpus in tests/data/recipes/.

Docker -> def -> Docker -> def gives the same second definition, and def -> Docker -> def ->
Docker the same second Dockerfile; the shapes spython 0.3.14 fails on are in the corpus
(``spython-base`` stages in both formats, lower-case instructions, ``BootStrap:`` spellings,
continuation lines, compound commands in %post)."""

from __future__ import annotations

from pathlib import Path

import pytest

from computeops_grid.images.errors import ImageError
from computeops_grid.images.recipes import convert, recipe_kind

CORPUS = Path(__file__).resolve().parents[1] / "data" / "recipes"
RECIPES = sorted(CORPUS.iterdir())


def _write(directory: Path, name: str, text: str) -> Path:
    kind = "def" if text.startswith(("Bootstrap:", "#")) and "\nFROM " not in text else "Dockerfile"
    path = directory / (f"{name}.def" if kind == "def" else f"{name}.Dockerfile")
    path.write_text(text)
    return path


def test_the_corpus_holds_the_shapes_spython_fails_on() -> None:
    texts = {p.name: p.read_text() for p in RECIPES}
    assert len(RECIPES) >= 12
    assert any("Stage: spython-base" in t for t in texts.values())
    assert any(" AS spython-base" in t for t in texts.values())
    assert any(t.startswith("BootStrap:") for t in texts.values())
    assert any(t.startswith("bootstrap:") for t in texts.values())
    assert any(t.startswith("from ") for t in texts.values())
    assert any(t.count("FROM ") >= 2 for t in texts.values())
    assert any("\\\n" in t for t in texts.values())


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.name for p in RECIPES])
def test_round_trip_reaches_a_fixed_point(recipe: Path, tmp_path: Path) -> None:
    first = convert(recipe)
    back = convert(_write(tmp_path, "first", first))
    second = convert(_write(tmp_path, "back", back))
    assert second == first
    assert convert(_write(tmp_path, "second", second)) == back
    if recipe_kind(recipe) == "docker":
        assert first.startswith(("Bootstrap:", "# Dockerfile: "))
    else:
        assert first.startswith(("FROM ", "ARG "))


def test_spython_base_stages_keep_their_names(tmp_path: Path) -> None:
    definition = convert(CORPUS / "spython-multistage.Dockerfile")
    assert "Stage: spython-base" in definition
    assert "%files from spython-base\n    /src/hello /usr/bin/hello" in definition
    dockerfile = convert(CORPUS / "spython-two-stage.def")
    assert "FROM ubuntu:22.04 AS spython-base" in dockerfile
    assert "COPY --from=spython-base /src/hello /usr/bin/hello" in dockerfile


def test_lower_case_instructions_and_entrypoint_semantics() -> None:
    definition = convert(CORPUS / "lowercase.Dockerfile")
    assert "From: debian:12-slim\n" in definition
    assert 'if [ $# -eq 0 ]; then set -- /usr/local/bin/entry.sh; fi\n    exec "$@"' in definition
    app = convert(CORPUS / "python-app.Dockerfile")
    assert 'set -- --serve; fi\n    exec python /opt/app/app.py "$@"' in app
    assert "    export APP_HOME=/opt/app" in app


def test_runscripts_and_environment_become_docker_instructions() -> None:
    dockerfile = convert(CORPUS / "centos-hpc.def")
    assert 'ENTRYPOINT ["/opt/solver"]' in dockerfile
    assert dockerfile.index("RUN rm -f") < dockerfile.index("ENV LC_ALL=C")  # %environment: runtime only
    compound = convert(CORPUS / "compound-post.def")
    assert "FROM quay.io/biocontainers/samtools:1.9--h91753b0_8" in compound
    assert "RUN if [ ! -d /opt/tools ]; then \\\n    mkdir -p /opt/tools/bin; \\\n    fi" in compound
    assert "COPY run-pipeline.sh /run-pipeline.sh" in compound


@pytest.mark.parametrize(
    ("name", "text", "line", "message"),
    [
        ("Dockerfile", "FROM a\nRUN --mount=type=cache,target=/c make\n", 2, "RUN --flags"),
        ("Dockerfile", "FROM a\nFROBNICATE x\n", 2, "unknown instruction"),
        ("Dockerfile", "RUN echo\n", 1, "before the first FROM"),
        ("x.def", "Bootstrap: library\nFrom: alpine\n", 1, "Bootstrap: library"),
        ("x.def", "Bootstrap: docker\nFrom: a\n\n%setup\n    touch x\n", 4, "%setup"),
        ("x.def", "Bootstrap: docker\nFrom: a\n%post\n    if true; then\n        echo\n", 4, "does not end"),
        ("x.def", "Bootstrap: docker\nFrom: a\n%environment\n    . /env.sh\n", 4, "%environment"),
        ("x.def", "%post\n    echo\n", 1, "must start with Bootstrap"),
    ],
)
def test_errors_name_the_file_and_the_line(
    tmp_path: Path, name: str, text: str, line: int, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ImageError) as caught:
        convert(path)
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert message in str(caught.value)
