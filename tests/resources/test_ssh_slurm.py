"""A Slurm cluster reached through its login node: the real CLI, a real sshd, the real test Slurm.

The login node is this machine's sshd on 127.0.0.1 (fixture ``sshd``: a throwaway host
key, test user and client key); every Slurm command and every job file goes through it,
as the test user. The local Slurm resource beside it runs the same jobs as root.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import time
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from computeops_grid.backends.common.ssh import Destination, LoginNode
from tests.conftest import EXAMPLES, Cli
from tests.resources.test_named_resources import write_resources
from tests.services.slurm import SlurmCluster
from tests.services.sshd import SshServer

pytestmark = [pytest.mark.service]


def _job(tmp_path: Path, name: str, script: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        json.dumps(
            {
                "name": name,
                "image": "docker://busybox:latest",
                "command": "sh",
                "arguments": ["-c", script],
                "outputs": ["result.txt"],
            }
        )
    )
    return path


def _rows(cli: Cli) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in cli("list", "--json").json()}  # type: ignore[union-attr]


def _slurm_jobs_named(cluster: SlurmCluster, job_id: str) -> list[str]:
    """Every Slurm job (any user, accounting included) named after cops-grid job ``job_id``."""
    out = cluster.run("sacct", "-a", "-n", "-X", "-P", "-o", "JobID", f"--name=cops-{job_id}").stdout
    queued = cluster.run("squeue", "-h", "-a", "-t", "all", "-o", "%i", f"--name=cops-{job_id}").stdout
    return sorted(set(out.split()) | set(queued.split()))


def _remote_files(sshd: SshServer) -> list[Path]:
    jobs = sshd.home / "jobs"
    return list(jobs.rglob("*")) if jobs.exists() else []


def test_local_and_ssh_slurm_resources_side_by_side(
    cli: Cli,
    tmp_path: Path,
    slurm_settings: dict[str, Any],
    ssh_settings: dict[str, Any],
    sshd: SshServer,
) -> None:
    """Done when: `cops-grid submit etc/examples/hello.yaml --backend NAME --wait` works for a
    local and an SSH Slurm resource side by side, with the same states and exit codes."""
    write_resources(cli, {"lab": {"type": "slurm", **slurm_settings}, "lab-ssh": ssh_settings})
    logins = sshd.logins()
    ids: dict[str, str] = {}
    for name in ("lab", "lab-ssh"):
        result = cli("submit", str(EXAMPLES / "hello.yaml"), "--backend", name, "--wait", timeout=180)
        assert result.code == 0, f"{name}: {result.stderr}"
        assert "Hello from Linux in a container, job hello" in result.stdout, f"{name}: {result.stdout}"
        ids[name] = result.stdout.split()[0]
    failing = _job(tmp_path, "three", "echo partial > result.txt; exit 3")
    failed: dict[str, str] = {}
    for name in ("lab", "lab-ssh"):
        result = cli("submit", str(failing), "--backend", name, "--wait", timeout=180)
        assert result.code == 8, f"{name}: {result.stderr}"  # --wait saw a job fail
        failed[name] = result.stdout.split()[0]

    rows = _rows(cli)
    for name in ("lab", "lab-ssh"):
        assert rows[ids[name]]["backend"] == name
        assert (rows[ids[name]]["state"], rows[ids[name]]["exit_code"]) == ("completed", 0)
        assert (rows[failed[name]]["state"], rows[failed[name]]["exit_code"]) == ("failed", 3)
        for job_id, text in ((ids[name], "done\n"), (failed[name], "partial\n")):
            out = tmp_path / "out" / job_id
            got = cli("get", job_id, "-o", str(out), timeout=60)
            assert got.code == 0, f"{name}: {got.stderr}"
            assert (out / "result.txt").read_text() == text
        assert "Hello from Linux" in cli("logs", ids[name]).stdout

    # the SSH jobs went through the login node: their directories are there, written by the
    # test user (the remote side), and nothing of them is in the local jobs directory
    local_jobs = cli.home / "jobs"
    for job_id in (ids["lab-ssh"], failed["lab-ssh"]):
        remote = sshd.home / "jobs" / job_id
        assert (remote / "result.txt").is_file()
        assert not (local_jobs / job_id).exists()
    assert (local_jobs / ids["lab"]).is_dir()
    assert {p.lstat().st_uid for p in _remote_files(sshd)} == {sshd.uid}
    # one connection served every command of every process (submit, status, get, logs)
    assert sshd.logins() - logins == 1


def test_backends_lists_the_login_node(cli: Cli, ssh_settings: dict[str, Any], sshd: SshServer) -> None:
    wrong = sshd.root / "client" / "wrong_known_hosts"
    other = sshd.throwaway_key("other-host")
    wrong.write_text(
        f"{sshd.known_hosts_name} {' '.join(other.with_suffix('.pub').read_text().split()[:2])}\n"
    )
    write_resources(cli, {"lab-ssh": ssh_settings, "impostor": {**ssh_settings, "known_hosts": str(wrong)}})
    result = cli("backends", "--json", "--timeout", "20", timeout=60)
    assert result.code == 0, result.stderr
    rows = {r["name"]: r for r in result.json()}  # type: ignore[union-attr]
    assert rows["lab-ssh"]["reachable"] is True
    assert rows["lab-ssh"]["detail"].startswith(f"via {sshd.destination}: partitions: debug")
    assert rows["lab-ssh"]["credential"] == "ok"
    assert rows["impostor"]["reachable"] is False
    assert "host key does not match" in rows["impostor"]["credential"]


HOSTILE = [
    "$(touch {canary})",
    "`touch {canary}`",
    "; touch {canary}",
    "&& touch {canary} &&",
    "| touch {canary}",
    "> {canary}",
    "it's",
    'say "hi"',
    "two  spaces",
    "",
    "*",
    "~",
    "$HOME",
    "line\nbreak",
    "back\\slash",
    "-n",
    "--",
    "#comment",
    "!event",
    "{a,b}",
    "tab\there",
]


def test_remote_arguments_are_quoted_for_the_login_shell(
    sshd: SshServer, ssh_settings: dict[str, Any], tmp_path: Path
) -> None:
    """ssh joins its arguments into a command line for the login shell: each one is quoted,
    so none becomes shell syntax there (arguments, and directory names of the file transfers)."""
    canary = sshd.home / "canary"
    node = LoginNode(
        Destination.parse(sshd.destination),
        family="slurm",
        key=str(sshd.key),
        known_hosts=str(sshd.known_hosts),
        config="/dev/null",
        control_dir=ssh_settings["ssh_control_dir"],
    )
    hostile = [a.replace("{canary}", str(canary)) for a in HOSTILE]
    proc = node.run(
        ["python3", "-c", "import json,sys; print(json.dumps(sys.argv[1:]))", *hostile], timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == hostile
    # a directory named like an attack, written and read through tar over the same connection
    weird = sshd.home / f"jobs $(touch {canary}) ;`id` it's"
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f.txt").write_text("payload\n")
    archive = tmp_path / "stage.tar"
    subprocess.run(["tar", "-c", "-f", str(archive), "-C", str(tmp_path), "a"], check=True)
    with archive.open("rb") as data:
        node.put_tree(data, PurePosixPath(weird), timeout=30)
    assert (weird / "a" / "f.txt").read_text() == "payload\n"
    assert (weird / "a" / "f.txt").stat().st_uid == sshd.uid
    got = node.read_files(PurePosixPath(weird), ["a/f.txt", "a/missing"], timeout=30)
    assert got == {"a/f.txt": b"payload\n"}
    assert not canary.exists()
    node.close()
    assert not node.control_path.exists()


@pytest.fixture
def lost_reply_bin(sshd: SshServer) -> Path:
    """A ``bin_dir`` on the login node whose ``sbatch`` submits, then drops the connection to
    the client before the reply (it kills its own sshd session); the other tools are Slurm's."""
    bin_dir = sshd.root / "lost-reply-bin"
    bin_dir.mkdir(mode=0o755, exist_ok=True)
    for tool in ("squeue", "sacct", "scancel", "sinfo"):
        link = bin_dir / tool
        if not link.exists():
            link.symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    sbatch = bin_dir / "sbatch"
    sbatch.write_text(
        "#!/bin/sh\n"
        f'{shutil.which("sbatch")} "$@" > "$HOME/lost-reply.out" 2>&1\n'
        "p=$PPID\n"
        'while [ "$p" -gt 1 ]; do\n'
        '  case "$(cat /proc/$p/comm)" in sshd*) kill -9 "$p"; exit 0;; esac\n'
        "  p=$(cut -d' ' -f4 /proc/$p/stat)\n"
        "done\n"
        "exit 99\n"
    )
    sbatch.chmod(0o755)
    return bin_dir


def _wait_state(cli: Cli, job_id: str, states: set[str], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        result = cli("status", job_id, "--json", timeout=60)
        assert result.code == 0, result.stderr
        (row,) = result.json()  # type: ignore[misc]
        if row["state"] in states or time.monotonic() > deadline:
            return dict(row)
        time.sleep(0.5)


def test_lost_reply_job_exists_once_and_sync_finds_it(
    cli: Cli,
    tmp_path: Path,
    ssh_settings: dict[str, Any],
    slurm_cluster: SlurmCluster,
    lost_reply_bin: Path,
) -> None:
    write_resources(cli, {"lab-ssh": {**ssh_settings, "bin_dir": str(lost_reply_bin)}})
    result = cli("submit", str(_job(tmp_path, "lost", "echo done > result.txt")), "--backend", "lab-ssh")
    assert result.code == 76, result.stderr  # may have arrived: never resent
    assert "the connection dropped while `sbatch` ran" in result.stderr
    assert "cops-grid sync" in result.stderr
    (row,) = _rows(cli).values()
    assert row["state"] == "submitting" and row["native_id"] is None
    job_id = row["id"]
    assert len(_slurm_jobs_named(slurm_cluster, job_id)) == 1  # sbatch did run on the login node

    synced = cli("sync", "--json", timeout=120)
    assert synced.code == 0, synced.stderr
    assert synced.json()["found"] == 1  # type: ignore[index]
    final = _wait_state(cli, job_id, {"completed", "failed"})
    assert (final["state"], final["exit_code"]) == ("completed", 0)
    assert _slurm_jobs_named(slurm_cluster, job_id) == [final["native_id"]]  # once, the one found


def _refused(cli: Cli, tmp_path: Path, slurm_cluster: SlurmCluster, code: int) -> tuple[str, str]:
    before = set(_rows(cli))
    result = cli("submit", str(_job(tmp_path, "refused", "true")), "--backend", "lab-ssh", timeout=120)
    assert result.code == code, result.stderr
    (row,) = (r for i, r in _rows(cli).items() if i not in before)
    assert row["state"] == "new"  # kept, retryable, never sent
    assert _slurm_jobs_named(slurm_cluster, row["id"]) == []
    return result.stderr, row["id"]


def test_host_key_mismatch_and_unknown_host_key_are_refused(
    cli: Cli, tmp_path: Path, ssh_settings: dict[str, Any], sshd: SshServer, slurm_cluster: SlurmCluster
) -> None:
    other = sshd.throwaway_key("impostor-host")
    wrong = tmp_path / "known_hosts"
    wrong.write_text(
        f"{sshd.known_hosts_name} {' '.join(other.with_suffix('.pub').read_text().split()[:2])}\n"
    )
    before = wrong.read_text()
    logins = sshd.logins()
    write_resources(cli, {"lab-ssh": {**ssh_settings, "known_hosts": str(wrong)}})
    said, _ = _refused(cli, tmp_path, slurm_cluster, 77)
    assert "the login node's host key does not match the one in" in said
    assert f"ssh-keygen -f {wrong} -R '{sshd.known_hosts_name}'" in said  # the hint, one line
    assert "never accepts or replaces host keys" in said
    assert wrong.read_text() == before  # never replaced, never accepted

    wrong.write_text("")
    said, _ = _refused(cli, tmp_path, slurm_cluster, 77)
    assert "host key is not in" in said and f"ssh-keyscan -p {sshd.port} 127.0.0.1" in said
    assert wrong.read_text() == ""
    assert sshd.logins() == logins  # no login happened


def test_a_key_the_login_node_refuses(
    cli: Cli, tmp_path: Path, ssh_settings: dict[str, Any], sshd: SshServer, slurm_cluster: SlurmCluster
) -> None:
    wrong = sshd.throwaway_key("not-authorized")
    write_resources(cli, {"lab-ssh": {**ssh_settings, "ssh_key": str(wrong)}})
    said, _ = _refused(cli, tmp_path, slurm_cluster, 77)
    assert f"the login node refused the key {wrong} (" in said and "Permission denied (publickey)" in said
    assert "authorized_keys" in said

    wrong.chmod(0o644)  # ssh would ignore it: said before connecting
    said, _ = _refused(cli, tmp_path, slurm_cluster, 77)
    assert "is readable by others (mode 0644)" in said and f"chmod 600 {wrong}" in said


def test_login_node_down_sends_nothing_and_sync_submits_once_it_is_back(
    cli: Cli, tmp_path: Path, ssh_settings: dict[str, Any], sshd: SshServer, slurm_cluster: SlurmCluster
) -> None:
    from tests.services.slurm import free_port

    down = f"{sshd.user}@127.0.0.1:{free_port()}"  # nothing listens there
    write_resources(cli, {"lab-ssh": {**ssh_settings, "ssh": down}})
    said, job_id = _refused(cli, tmp_path, slurm_cluster, 75)
    assert "Connection refused" in said and "was not sent" in said

    write_resources(cli, {"lab-ssh": ssh_settings})  # the login node is back
    synced = cli("sync", "--json", timeout=120)
    assert synced.code == 0, synced.stderr
    assert synced.json()["submitted"] == 1  # type: ignore[index]
    final = _wait_state(cli, job_id, {"completed", "failed"})
    assert final["state"] == "completed"
    assert _slurm_jobs_named(slurm_cluster, job_id) == [final["native_id"]]


def test_nothing_is_written_locally_for_an_ssh_resource(cli: Cli, ssh_settings: dict[str, Any]) -> None:
    """``--dry-run`` shows the scripts with the login node's paths and touches neither side."""
    write_resources(cli, {"lab-ssh": ssh_settings})
    result = cli("submit", str(EXAMPLES / "hello.yaml"), "--backend", "lab-ssh", "--dry-run")
    assert result.code == 0, result.stderr
    assert f"--chdir={ssh_settings['remote_jobs_dir']}/" in result.stdout
    assert not (cli.home / "jobs").exists() or not os.listdir(cli.home / "jobs")


def test_arrays_and_jobs_slurm_forgot_are_resolved_from_the_login_node(
    ssh_settings: dict[str, Any], tmp_path: Path, sshd: SshServer
) -> None:
    """The backend itself: an array over SSH, then jobs Slurm no longer lists (no accounting)
    resolved from the files they left on the login node, as on the local path."""
    from computeops_grid.backends.base import BackendContext
    from computeops_grid.backends.slurm.backend import SlurmBackend, SlurmSettings
    from computeops_grid.jobs.state import JobState
    from tests.services.grid_jobs import pilot_file, record, settle, submit_ok

    settings = {k: v for k, v in ssh_settings.items() if k != "type"}
    local = tmp_path / "local-jobs"
    context = BackendContext(home=tmp_path, jobs_dir=local, image_root=tmp_path, pilot=pilot_file())
    slurm = SlurmBackend(SlurmSettings(**settings), context)
    shared = tmp_path / "data.txt"
    shared.write_text("shared input\n")
    element = 'test "$(cat data.txt)" = "shared input" || exit 9; exit {}'
    jobs = [
        record("echo ok", name="ok"),
        record("exit 3", name="three"),
        *(
            record(element.format(i), name="arr", bulk_id="bulk1", index=i, inputs=[str(shared)])
            for i in range(2)
        ),
    ]
    submit_ok(slurm, jobs)
    assert jobs[3].native_id == f"{jobs[2].native_id.split('_')[0]}_1"  # type: ignore[union-attr]
    states = settle(slurm, jobs)
    assert [states[j.id].value for j in jobs] == ["completed", "failed", "completed", "failed"]
    # Slurm "forgot" them: ids it does not list; the files on the login node answer
    forgotten = [dataclasses.replace(j, native_id=f"99999{n}") for n, j in enumerate(jobs)]
    got = slurm.status(forgotten)
    assert [(got[j.id].state.value, got[j.id].exit_code) for j in forgotten] == [
        ("completed", 0), ("failed", 3), ("completed", 0), ("failed", 1),
    ]  # fmt: skip
    # lookup after a crash: by name in squeue, else the id the job wrote when it started
    found = slurm.lookup(jobs)
    assert {j.id: found[j.id].native_id for j in jobs} == {j.id: j.native_id for j in jobs}  # type: ignore[union-attr]
    assert slurm._accounting is True  # sacct answered on the login node (for ids it did not know)
    # scancel there: a running job stops
    sleeper = [record("sleep 300", name="sleeper")]
    submit_ok(slurm, sleeper)
    slurm.cancel(sleeper)
    assert settle(slurm, sleeper) == {sleeper[0].id: JobState.CANCELLED}
    assert not local.exists()
    assert slurm.logs(jobs[0]).startswith("ok")
    # the input shared by the array went once: one file, linked into both job directories
    staged = [sshd.home / "jobs" / j.id / "data.txt" for j in jobs[2:]]
    assert staged[0].stat().st_ino == staged[1].stat().st_ino


def test_the_agent_holds_the_key(
    sshd: SshServer, control_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ssh_key, ssh offers the keys of the agent that SSH_AUTH_SOCK names."""
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        subprocess.run(["ssh-add", "-q", str(sshd.key)], check=True, capture_output=True)
        node = LoginNode(
            Destination.parse(sshd.destination),
            family="slurm",
            known_hosts=str(sshd.known_hosts),
            config="/dev/null",
            control_dir=str(control_dir),
        )
        proc = node.run(["id", "-un"], timeout=30)
        assert (proc.returncode, proc.stdout.strip()) == (0, sshd.user)
    finally:
        agent.terminate()
        agent.wait(timeout=10)
