"""The wrapper's start-up fast path does what the standard modules it avoids would do: the
command-line parser agrees with argparse, the INI reader with configparser, the JSON writer with
json, the fork/exec launcher with subprocess (closed descriptors, exec errors, stderr tee), and the
hot path imports nothing beyond the interpreter's own start-up modules and ``select``."""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import time
from pathlib import Path
from types import ModuleType

import pytest

from computeops_grid import worker
from computeops_grid.cli.pilot import load_wrapper

from .conftest import PYTHON, make_rootfs


@pytest.fixture(scope="module")
def pilot() -> ModuleType:
    return load_wrapper()


FAST_ARGVS = [
    [],
    ["--image", "docker://busybox", "--", "/bin/sh", "-c", "exit 3"],
    ["--image=host:", "--env", "A=1", "--env=B=2", "--pass-env", "X", "--gpu", "--", "true", "--image", "y"],
    ["--image", "x", "--bind", "/a:/b:ro", "--bind", "/c", "--report", "r.json", "echo", "--gpu"],
    ["--require-container", "--require-container", "--image", "x", "--", "--"],
    ["--allow-uncontained", "-v", "--dry-run", "--workdir", "/tmp", "--runtime", "proot,runc", "--"],
    ["--list-runtimes", "--json", "--image-root", "/cvmfs/x", "--config", "/dev/null"],
    ["--image", "x", "", "a"],
]
FALLBACK_ARGVS = [
    ["--imag", "x", "--", "true"],  # abbreviation
    ["--image", "--", "true"],  # value looks like an option
    ["--require-container", "--allow-uncontained"],  # conflicting policies
    ["--gpu=yes"],
    ["-vv"],
]


@pytest.mark.parametrize("argv", FAST_ARGVS)
def test_fast_parser_agrees_with_argparse(pilot: ModuleType, argv: list[str]) -> None:
    fast = pilot.fast_parse(argv)
    assert fast is not None
    assert vars(fast) == vars(pilot.full_parse(argv))


@pytest.mark.parametrize("argv", FALLBACK_ARGVS)
def test_fast_parser_leaves_the_rest_to_argparse(pilot: ModuleType, argv: list[str]) -> None:
    assert pilot.fast_parse(argv) is None
    try:
        args = pilot.parse_args(argv)
    except pilot.PilotError as error:
        assert error.code == 240
    else:
        assert vars(args) == vars(pilot.full_parse(argv))


INI_TEXTS = [
    "",
    "# only a comment\n; another\n",
    "[pilot]\nruntimes = proot, runc\nImage_Root: /x=y\nbinds =\n\n[other]\nkey = v\n",
    "[other]\nruntimes = a\n",
    "[pilot]\ncache_ttl=0\n  # indented comment\n",
]
INI_FALLBACKS = [
    ("[pilot]\nbinds = /a,\n  /b\n", {"binds": "/a,\n/b"}),  # continuation line
    ("[DEFAULT]\nruntimes = a\n[pilot]\n", {"runtimes": "a"}),
    ("runtimes = a\n", None),  # no section header: configparser's error
    ("[pilot]\nruntimes\n", None),
    ("[pilot]\nbinds = 1\nbinds = 2\n", None),
]


@pytest.mark.parametrize("text", INI_TEXTS)
def test_simple_ini_reader_agrees_with_configparser(pilot: ModuleType, text: str) -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    expected = dict(parser.items("pilot")) if parser.has_section("pilot") else {}
    assert pilot.simple_ini_section(text, "pilot") == expected


@pytest.mark.parametrize(("text", "expected"), INI_FALLBACKS)
def test_unusual_ini_goes_to_configparser(
    pilot: ModuleType, text: str, expected: dict[str, str] | None, tmp_path: Path
) -> None:
    assert pilot.simple_ini_section(text, "pilot") is None
    conf = tmp_path / "pilot.conf"
    conf.write_text(text)
    if expected is None:
        with pytest.raises(pilot.PilotError) as info:
            pilot.load_settings(str(conf), {})
        assert info.value.code == 240
        assert str(conf) in info.value.what
        return
    settings = pilot.load_settings(str(conf), {})
    assert {key: getattr(settings, key) for key in expected} == expected


def test_json_writer_matches_json_dumps(pilot: ModuleType) -> None:
    sample: dict[str, object] = {
        "z": [1, 2.5, -3e-07, True, False, None, [], {}],
        "a": {"nested": {"k": "v"}, "empty": ""},
        "text": 'quote " backslash \\ tab \t nl \n cr \r bell \x07 \x7f é 漢 \U0001f600 \udcff',
        "m": ("tu", "ple"),
    }
    for indent in (None, 1, 2):
        assert pilot.to_json(sample, indent=indent) == json.dumps(sample, indent=indent, sort_keys=True)
    assert json.loads(pilot.to_json(sample, indent=1)) == json.loads(json.dumps(sample))


def test_probe_cache_round_trip(pilot: ModuleType, tmp_path: Path) -> None:
    cache = pilot.ProbeCache(str(tmp_path), 300)
    cache.put("k1", {"ok": True, "seconds": 0.01, "time": time.time()})
    cache.put("k2", {"ok": False, "seconds": 1.5, "time": time.time(), "reason": "bad\tthing\nhappened"})
    with (tmp_path / pilot.ProbeCache.FILE).open("a") as handle:
        handle.write("garbage line\nk3\tnot-a-time\t1\t0\t\n")
    again = pilot.ProbeCache(str(tmp_path), 300)
    assert again.get("k1")["ok"] is True
    assert again.get("k2") == {**again.get("k2"), "ok": False, "reason": "bad thing happened"}
    assert again.get("k3") is None
    assert pilot.ProbeCache(str(tmp_path), 0.0).get("k1") is None  # ttl 0: cache disabled
    assert oct((tmp_path / pilot.ProbeCache.FILE).stat().st_mode & 0o777) == "0o600"


def _host(tmp_path: Path, command: list[str], **popen: object) -> subprocess.CompletedProcess[str]:
    argv = [PYTHON, str(worker.pilot()), "--workdir", str(tmp_path), "--image", "host:", "--", *command]
    env = {"PATH": "/usr/bin:/bin", "COPS_PILOT_CONFIG": os.devnull}
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=60, **popen)  # type: ignore[call-overload, no-any-return]


def test_payload_gets_only_stdio_descriptors(tmp_path: Path) -> None:
    """Like subprocess's close_fds: a descriptor the pilot left open does not reach the payload."""
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)
    try:
        proc = _host(tmp_path, ["/bin/ls", "/proc/self/fd"], pass_fds=(write_end,))
    finally:
        os.close(read_end)
        os.close(write_end)
    assert proc.returncode == 0, proc.stderr
    fds = sorted(int(fd) for fd in proc.stdout.split())
    assert fds[:3] == [0, 1, 2]
    assert len(fds) == 4, fds  # 0, 1, 2 and the one ls opened to list the directory


def test_stderr_is_teed_and_not_executable_is_126(tmp_path: Path) -> None:
    proc = _host(tmp_path, ["/bin/sh", "-c", "echo to-err >&2; echo to-out"])
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "to-out\n", "to-err\n")
    script = tmp_path / "noexec.sh"
    script.write_text("#!/bin/sh\necho ran\n")
    proc = _host(tmp_path, [str(script)])
    assert proc.returncode == 126
    assert "Permission denied" in proc.stderr


def test_descendant_holding_stderr_does_not_hold_the_wrapper(tmp_path: Path) -> None:
    """The payload exits while a background child keeps stderr open: the wrapper returns after its
    short grace period, not when the background child ends (60 s)."""
    pidfile = tmp_path / "bg.pid"
    started = time.monotonic()
    proc = _host(tmp_path, ["/bin/sh", "-c", f"sleep 60 >/dev/null & echo $! > {pidfile}; exit 5"])
    elapsed = time.monotonic() - started
    os.kill(int(pidfile.read_text()), 9)
    assert proc.returncode == 5
    assert elapsed < 40


def test_hot_path_imports_nothing_heavy(tmp_path: Path) -> None:
    """A warm container run and a host run import only `select` (and `resource` once the payload
    ended) beyond the interpreter's start-up modules (argparse, re, json, subprocess, tempfile,
    shutil, configparser stay out)."""

    env = {**os.environ, "COPS_PILOT_CACHE_DIR": str(tmp_path / "cache"), "COPS_PILOT_CONFIG": os.devnull}

    def imported(argv: list[str]) -> set[str]:
        proc = subprocess.run(
            [PYTHON, "-X", "importtime", *argv],
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp_path,
            env=env,
        )
        return {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "import time:" in line}

    baseline = imported(["-c", "pass"])
    rootfs = make_rootfs(tmp_path / "rootfs")
    env_args = ["--workdir", str(tmp_path), "--report", "r.json"]
    container = [
        str(worker.pilot()),
        "--image",
        str(rootfs),
        "--runtime",
        "proot",
        *env_args,
        "--",
        "/bin/true",
    ]
    subprocess.run([PYTHON, *container], check=True, cwd=tmp_path, env=env)  # cold: probes, fills the cache
    host = [str(worker.pilot()), "--image", "host:", *env_args, "--", "true"]
    for argv in (container, host):
        # resource (a small C module) is imported only once the payload has ended, for its max RSS
        assert imported(argv) - baseline - {"imported package"} == {"select", "resource"}
