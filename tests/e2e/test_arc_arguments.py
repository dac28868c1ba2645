"""ARC descriptions keep `$` and backquotes away from A-REX's batch shell (no service needed).

A-REX writes each argument into the LRMS job script inside "..." and escapes only \\ and ",
so `$VAR` and `$(cmd)` would run on the worker's shell, outside the container. Such jobs
get the launcher as executable and their wrapper arguments as one base64 word.
"""

from __future__ import annotations

import base64
import json

from computeops_grid import worker
from computeops_grid.backends.arc import desc
from computeops_grid.backends.common.payload import PILOT_FILE
from tests.services.grid_jobs import record


def test_plain_arguments_go_to_the_wrapper_directly() -> None:
    job = record("echo hello > out.txt")
    opts = desc.DescOptions()
    assert desc.command_line(job, opts) == (PILOT_FILE, desc.wrapper_args(job, opts))
    assert desc.input_names(job, opts) == [PILOT_FILE]


def test_shell_expansions_travel_base64_through_the_launcher() -> None:
    job = record('echo "$(uname -s) $HOME `id`"')
    opts = desc.DescOptions(queue="debug")
    executable, args = desc.command_line(job, opts)
    assert executable == desc.LAUNCHER_FILE
    (word,) = args
    assert json.loads(base64.urlsafe_b64decode(word[4:])) == desc.wrapper_args(job, opts)
    assert desc.input_names(job, opts) == [PILOT_FILE, desc.LAUNCHER_FILE]
    adl = desc.adl(job, opts)
    assert f"<Path>{desc.LAUNCHER_FILE}</Path><Argument>{word}</Argument>" in adl
    assert f"<Name>{desc.LAUNCHER_FILE}</Name><IsExecutable>true</IsExecutable>" in adl
    assert "$" not in adl
    xrsl = desc.xrsl(job, opts, sources={desc.LAUNCHER_FILE: "/x/launch.py"})
    assert f'(executable="{desc.LAUNCHER_FILE}")(arguments="{word}")' in xrsl
    assert f'("{desc.LAUNCHER_FILE}" "/x/launch.py")' in xrsl
    assert worker.path(worker.DIRAC_LAUNCHER).is_file()
