"""One table per contract between the client and the worker node, and the copies pinned to it.

Exit codes 240-249: the wrapper's ``EXIT_CODES`` is the table; the client reads it by loading the
wrapper (``computeops_grid.jobs.exit_codes``); the copies kept where the wrapper cannot be
imported (the probes' ``probelib``, the DIRAC launcher, the local backend's range) must equal it,
and no other literal 240-249 may appear in the package's Python sources.

Image names: ``IMAGE_NAME_RULES`` on each side (wrapper, ``images/reference.py``) must be equal,
and both sides must map, or refuse, every name of ``tests/data/image-refs.txt`` alike.
"""

from __future__ import annotations

import importlib.util
import io
import re
import subprocess
import tokenize
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import computeops_grid
from computeops_grid import worker
from computeops_grid.backends.local import backend as local_backend
from computeops_grid.backends.slurm import arrays
from computeops_grid.backends.slurm.script import job_script
from computeops_grid.images import reference
from computeops_grid.images.errors import ImageError
from computeops_grid.jobs import exit_codes
from tests.services.grid_jobs import record

PACKAGE = Path(computeops_grid.__file__).resolve().parent
REFS = Path(__file__).resolve().parents[1] / "data" / "image-refs.txt"
REFUSED = "-"

# The only places a literal 240-249 may appear in computeops_grid/**.py: the wrapper's table,
# and the copies that test_exit_code_copies_equal_the_wrapper_table pins (file, whole line).
ALLOWED_LITERALS = {
    ("worker/cops_pilot.py", re.compile(r"EXIT_RESERVED = range\(240, 250\)")): 1,
    ("worker/cops_pilot.py", re.compile(r"EXIT_[A-Z_]+ = 24\d(  # .*)?")): -1,  # one per row of EXIT_CODES
    ("worker/probes/probelib.py", re.compile(r"PILOT_OWN_CODES = range\(240, 250\)")): 1,
    ("worker/cops_dirac_launch.py", re.compile(r"EXIT_BAD_ARGS = 240")): 1,
    ("backends/local/backend.py", re.compile(r"WRAPPER_CODES = range\(240, 250\)")): 1,
}
RESERVED_NUMBER = re.compile(r"(?<![\w.])24\d(?![\w.])")
RANGE_IN_PROSE = re.compile(
    r"(?<![\w.])240\s*[-\u2013]\s*249(?![\w.])"
)  # "codes 240-249": the range, not a code


@pytest.fixture(scope="module")
def pilot() -> ModuleType:
    return worker.load_pilot()


def _load_standalone(name: str, path: Path) -> ModuleType:
    """A worker-side file imported under a private name (as its own directory would import it)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- exit codes


def test_the_client_reads_the_wrapper_table_itself(pilot: ModuleType) -> None:
    assert exit_codes.table() is pilot.EXIT_CODES  # the same object: no second copy
    assert exit_codes.reserved() == pilot.EXIT_RESERVED == range(240, 250)
    assert set(pilot.EXIT_CODES) <= set(pilot.EXIT_RESERVED)
    reasons = [reason for reason, _meaning in pilot.EXIT_CODES.values()]
    assert len(set(reasons)) == len(reasons), "reason keywords name one code each"
    assert all(reason and meaning for reason, meaning in pilot.EXIT_CODES.values())
    for number, (reason, _meaning) in pilot.EXIT_CODES.items():
        assert exit_codes.code(reason) == number
    with pytest.raises(KeyError):
        exit_codes.code("no-such-reason")


def test_exit_code_copies_equal_the_wrapper_table(pilot: ModuleType) -> None:
    """The copies kept where the wrapper cannot be imported, pinned to the table."""
    probelib = _load_standalone("probelib_under_test", worker.path("probes/probelib.py"))
    assert probelib.PILOT_OWN_CODES == pilot.EXIT_RESERVED
    launcher = _load_standalone("cops_dirac_launch_under_test", worker.path(worker.DIRAC_LAUNCHER))
    assert launcher.EXIT_BAD_ARGS == pilot.EXIT_BAD_ARGS
    assert pilot.EXIT_CODES[launcher.EXIT_BAD_ARGS][0] == "bad-arguments"
    assert local_backend.WRAPPER_CODES == pilot.EXIT_RESERVED


def test_dirac_launcher_fails_with_the_table_code(pilot: ModuleType) -> None:
    launcher = worker.path(worker.DIRAC_LAUNCHER)
    proc = subprocess.run(["python3", str(launcher), "not-b64"], capture_output=True, text=True, check=False)
    assert proc.returncode == pilot.EXIT_BAD_ARGS


def test_slurm_job_scripts_exit_with_table_codes(tmp_path: Path, pilot: ModuleType) -> None:
    job = record("true")
    missing = tmp_path / "no such dir"
    script = job_script(job, missing, python="python3", image_root=None)
    array_of_one = arrays.Array((record("true", bulk_id="b1", index=0),), 0)
    tasks = arrays.tasks_file(array_of_one, [tmp_path / "job"], [["true"]], [[]])
    (tmp_path / arrays.TASKS_FILE).write_text(tasks)
    array = arrays.sbatch_script(array_of_one, tmp_path, [], None)
    used = {int(code) for text in (script, array, tasks) for code in re.findall(r"\bexit (\d+)", text)}
    assert used <= set(pilot.EXIT_CODES), f"job-script codes {used} must be rows of EXIT_CODES"

    ran = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, check=False)
    assert ran.returncode == exit_codes.code("job-dir-unusable") == pilot.EXIT_JOB_DIR_UNUSABLE
    env = {"SLURM_ARRAY_TASK_ID": "7", "PATH": "/usr/bin:/bin"}
    ran = subprocess.run(["/bin/sh", "-c", array], capture_output=True, text=True, check=False, env=env)
    assert ran.returncode == exit_codes.code("job-index-unknown") == pilot.EXIT_JOB_INDEX_UNKNOWN
    assert "unknown array index 7" in ran.stderr


def _literals(path: Path) -> Iterator[tuple[int, str, str]]:
    """(line number, line, token) of every number 240-249 in code or strings (comments skipped)."""
    source = path.read_text()
    lines = source.splitlines()
    kinds = {tokenize.NUMBER, tokenize.STRING}
    fstring_middle = getattr(tokenize, "FSTRING_MIDDLE", None)
    if fstring_middle is not None:
        kinds.add(fstring_middle)
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in kinds:
            continue
        text = RANGE_IN_PROSE.sub("", tok.string)
        if tok.type == tokenize.NUMBER:
            hits = [tok.string] if RESERVED_NUMBER.fullmatch(tok.string) else []
        else:
            hits = RESERVED_NUMBER.findall(text)
        for hit in hits:
            yield tok.start[0], lines[tok.start[0] - 1].strip(), hit


def test_the_scan_sees_codes_in_code_and_templates(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import sys\n"
        "X = 'cd /x || exit 248'  # 241 in a comment is not a use\n"
        'Y = f"case $i in *) exit 247 ;; esac {sys.argv}"\n'
        'Z = """reserved codes 240-249: a range, not a code"""\n'
        "sys.exit(243)\n"
        "W = (2440, 24.5, 0x245, 'sha256:0245ab', 'v1.245')\n"
    )
    assert [(lineno, hit) for lineno, _line, hit in _literals(sample)] == [(2, "248"), (3, "247"), (5, "243")]


def test_no_reserved_code_outside_the_table(pilot: ModuleType) -> None:
    """A literal 240-249 in the package is a copy of the table: use computeops_grid.jobs.exit_codes
    (client) or a row of the wrapper's EXIT_CODES (worker side) instead."""
    seen = dict.fromkeys(ALLOWED_LITERALS, 0)
    stray = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        for lineno, line, hit in _literals(path):
            allowed = [key for key in ALLOWED_LITERALS if key[0] == rel and key[1].fullmatch(line)]
            if allowed:
                seen[allowed[0]] += 1
            else:
                stray.append(f"computeops_grid/{rel}:{lineno}: {hit} in {line!r}")
    assert not stray, "reserved exit codes outside the table:\n" + "\n".join(stray)
    expected = {key: len(pilot.EXIT_CODES) if count < 0 else count for key, count in ALLOWED_LITERALS.items()}
    assert seen == expected, "the allowed copies moved or changed: update ALLOWED_LITERALS and their pins"


# ----------------------------------------------------------------------------- image names


def test_image_name_rules_are_one_table(pilot: ModuleType) -> None:
    assert dict(reference.IMAGE_NAME_RULES) == dict(pilot.IMAGE_NAME_RULES)
    assert reference.DOCKER_HUB == pilot.DEFAULT_REGISTRY == pilot.IMAGE_NAME_RULES["default_registry"]


def _corpus() -> list[tuple[str, str]]:
    rows = []
    for line in REFS.read_text(encoding="ascii").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        ref, path = line.split()
        rows.append((ref.encode("ascii").decode("unicode_escape"), path))
    return rows


CORPUS = _corpus()


def test_corpus_covers_the_rules() -> None:
    refs = [ref for ref, _ in CORPUS]
    assert len(set(refs)) == len(refs), "duplicate names in the corpus"
    paths = [path for _, path in CORPUS]
    assert paths.count(REFUSED) >= 20
    assert any("@sha256:" in ref for ref, path in CORPUS if path != REFUSED)
    assert any(ref != ref.strip() for ref in refs)
    assert any(not ref.isascii() for ref in refs)


def _client(ref: str) -> str:
    try:
        return reference.parse_ref(ref).public_path
    except ImageError:
        return REFUSED


def _wrapper(pilot: ModuleType, ref: str) -> str:
    try:
        path: str = pilot.image_relpath(ref)
    except pilot.PilotError as error:
        assert error.code == pilot.EXIT_BAD_ARGS
        return REFUSED
    return path


@pytest.mark.parametrize(("ref", "expected"), CORPUS, ids=[ascii(ref) for ref, _ in CORPUS])
def test_client_and_wrapper_map_names_alike(pilot: ModuleType, ref: str, expected: str) -> None:
    assert (_client(ref), _wrapper(pilot, ref)) == (expected, expected)
