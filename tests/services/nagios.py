"""A real Nagios Core 4 (Debian nagios4-core), started without systemd for the tests.

``NagiosServer.start(workdir, checks)`` writes a minimal main configuration, one host and
one service per check command, runs ``nagios4`` in the foreground as a child process, and
``results()`` reads back what Nagios recorded in ``status.dat`` (state, output, perfdata).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

NAGIOS = shutil.which("nagios4") or "/usr/sbin/nagios4"

MAIN_CFG = """\
log_file={d}/nagios.log
cfg_file={d}/objects.cfg
object_cache_file={d}/objects.cache
precached_object_file={d}/objects.precache
resource_file={d}/resource.cfg
status_file={d}/status.dat
status_update_interval=1
nagios_user={user}
nagios_group={group}
check_external_commands=0
command_file={d}/nagios.cmd
lock_file={d}/nagios.lock
temp_file={d}/nagios.tmp
temp_path={d}
check_result_path={d}/checkresults
retain_state_information=0
state_retention_file={d}/retention.dat
interval_length=1
enable_notifications=0
execute_service_checks=1
execute_host_checks=1
max_concurrent_checks=8
check_result_reaper_frequency=1
service_inter_check_delay_method=n
host_inter_check_delay_method=n
max_service_check_spread=1
max_host_check_spread=1
service_interleave_factor=1
enable_flap_detection=0
use_syslog=0
log_rotation_method=n
enable_environment_macros=0
illegal_macro_output_chars=`~$&|'"<>
"""

OBJECT_TEMPLATE = """\
define command {{
    command_name    notify-nobody
    command_line    /bin/true
}}
define contact {{
    contact_name                    nobody
    host_notifications_enabled      0
    service_notifications_enabled   0
    host_notification_period        always
    service_notification_period     always
    host_notification_options       n
    service_notification_options    n
    host_notification_commands      notify-nobody
    service_notification_commands   notify-nobody
}}
define command {{
    command_name    host-alive
    command_line    /bin/true
}}
define host {{
    host_name               node
    address                 127.0.0.1
    check_command           host-alive
    max_check_attempts      1
    check_interval          600
    active_checks_enabled   1
    check_period            always
    notifications_enabled   0
    contacts                nobody
}}
define timeperiod {{
    timeperiod_name always
    alias           always
    sunday 00:00-24:00
    monday 00:00-24:00
    tuesday 00:00-24:00
    wednesday 00:00-24:00
    thursday 00:00-24:00
    friday 00:00-24:00
    saturday 00:00-24:00
}}
{services}
"""

SERVICE_TEMPLATE = """\
define command {{
    command_name    {name}
    command_line    {line}
}}
define service {{
    host_name               node
    service_description     {name}
    check_command           {name}
    max_check_attempts      1
    check_interval          600
    retry_interval          600
    check_period            always
    notifications_enabled   0
    contacts                nobody
    notification_interval   0
    notification_period     always
}}
"""


@dataclass
class ServiceStatus:
    state: int
    output: str
    long_output: str
    perfdata: str


def _nagios_escape(arg: str) -> str:
    if any(c in arg for c in " \t'\"\\;&|<>`"):
        raise ValueError(f"argument {arg!r} needs quoting: keep check arguments simple")
    return arg.replace("$", "$$")


def parse_status(text: str) -> dict[str, ServiceStatus]:
    """``servicestatus { ... }`` blocks of a status.dat -> service name -> status."""
    services: dict[str, ServiceStatus] = {}
    for block in text.split("servicestatus {")[1:]:
        fields: dict[str, str] = {}
        for line in block.split("}")[0].splitlines():
            key, sep, value = line.strip().partition("=")
            if sep:
                fields[key] = value
        if fields.get("has_been_checked") == "1":
            services[fields["service_description"]] = ServiceStatus(
                int(fields["current_state"]),
                fields.get("plugin_output", ""),
                fields.get("long_plugin_output", ""),
                fields.get("performance_data", ""),
            )
    return services


class NagiosServer:
    def __init__(self, workdir: Path, proc: subprocess.Popen[bytes], log: IO[bytes]) -> None:
        self.workdir = workdir
        self.proc = proc
        self.log = log

    @classmethod
    def start(cls, workdir: Path, checks: dict[str, list[str]]) -> NagiosServer:
        """Run Nagios with one service per ``checks`` entry (name -> argv of the check)."""
        user = "nagios" if _has_user("nagios") else pwd.getpwuid(os.getuid()).pw_name
        (workdir / "checkresults").mkdir(parents=True, exist_ok=True)
        services = "".join(
            SERVICE_TEMPLATE.format(name=name, line=" ".join(_nagios_escape(a) for a in argv))
            for name, argv in checks.items()
        )
        (workdir / "objects.cfg").write_text(OBJECT_TEMPLATE.format(services=services))
        (workdir / "resource.cfg").write_text("$USER1$=/usr/lib/nagios/plugins\n")
        cfg = workdir / "nagios.cfg"
        cfg.write_text(MAIN_CFG.format(d=workdir, user=user, group=user))
        if user != pwd.getpwuid(os.getuid()).pw_name:
            entry = pwd.getpwnam(user)
            for path in [workdir, *workdir.rglob("*")]:
                os.chown(path, entry.pw_uid, entry.pw_gid)
        verify = subprocess.run([NAGIOS, "-v", str(cfg)], capture_output=True, text=True, check=False)
        if verify.returncode != 0:
            raise RuntimeError(f"nagios -v failed:\n{verify.stdout}\n{verify.stderr}")
        log = open(workdir / "nagios.stdout", "wb")  # noqa: SIM115 - closed by stop()
        proc = subprocess.Popen([NAGIOS, str(cfg)], stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
        return cls(workdir, proc, log)

    def results(self, names: list[str], timeout: float = 120.0) -> dict[str, ServiceStatus]:
        """Wait until Nagios has checked every service in ``names`` and return their status."""
        deadline = time.monotonic() + timeout
        status = self.workdir / "status.dat"
        found: dict[str, ServiceStatus] = {}
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nagios exited: {(self.workdir / 'nagios.stdout').read_text()[-2000:]}")
            if status.is_file():
                found = parse_status(status.read_text(errors="replace"))
                if all(n in found for n in names):
                    return found
            time.sleep(0.5)
        raise TimeoutError(f"nagios checked only {sorted(found)} of {names}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
