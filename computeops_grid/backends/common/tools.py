"""The one runner for the backends' command-line tools, speaking the delivery model.

``sbatch``/``squeue``/``scancel``/``sacct``, the ``arc*`` tools, ``voms-proxy-*`` and
``dirac-wms-*`` all run through :func:`run_tool` (argv lists, never a shell) and fail
through :func:`tool_failure`, so the same event means the same thing on every backend:

* the tool is not installed: :class:`ToolMissing` (nothing sent; retrying now cannot help);
* the tool did not answer in time: :class:`DeliveryUncertain` (it may have reached the
  service: a submit is never repeated, ``sync`` looks the job up);
* the tool answered with an error: its last line is matched against the family's
  :class:`ToolErrors` fragments (not reached, may have arrived, credential), and anything
  else is the service refusing the request (:class:`BackendRejected`).
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from computeops_grid.errors import (
    BackendError,
    BackendRejected,
    BackendUnavailable,
    CredentialError,
    DeliveryUncertain,
    ToolMissing,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToolErrors:
    """How one family of tools says what happened (fragments of their error lines)."""

    family: str  # the backend's name, prefixed to messages
    install_hint: str  # how to get the tools
    unreachable: tuple[str, ...] = ()  # the service was not reached: nothing arrived
    uncertain: tuple[str, ...] = ()  # the request may have arrived
    credential: tuple[str, ...] = ()  # a credential problem (exit 77)
    unreachable_hint: str = "the service is down or the address is wrong; `cops-grid backends` checks"
    rejected_hint: str | None = None
    summary: Callable[[subprocess.CompletedProcess[str]], str] | None = None  # default: last line

    def said(self, proc: subprocess.CompletedProcess[str]) -> str:
        """What the tool said went wrong, in one line (the text the fragments are matched in)."""
        return self.summary(proc) if self.summary else last_line(proc)


def last_line(proc: subprocess.CompletedProcess[str]) -> str:
    said = (proc.stderr or proc.stdout or "").strip().splitlines()
    return said[-1].strip() if said else f"exit status {proc.returncode}"


def run_tool(
    argv: Sequence[str],
    errors: ToolErrors,
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    interactive: bool = False,
    stdin: IO[bytes] | None = None,
    stdout: IO[bytes] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one tool and return what it said; a missing tool or a hang raises (see module).

    stdin is closed unless ``interactive`` (a pass phrase prompt) or a file is given (a tar
    stream to unpack): no tool waits for input. With ``stdout`` (a file, for binary output
    such as a tar stream) the result's ``stdout`` is ``None``; stderr is always captured."""
    environ = dict(env if env is not None else os.environ)
    environ.update(extra_env or {})
    log.debug("running %s", list(argv[:6]))
    try:
        return subprocess.run(
            list(argv),
            stdin=stdin if stdin is not None else None if interactive else subprocess.DEVNULL,
            stdout=stdout if stdout is not None else subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environ,
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise ToolMissing(
            f"`{Path(argv[0]).name}` is not installed here", backend=errors.family, hint=errors.install_hint
        ) from None
    except subprocess.TimeoutExpired:
        raise DeliveryUncertain(
            f"`{Path(argv[0]).name}` did not answer within {timeout:.0f} s; the request may have arrived",
            backend=errors.family,
            hint="nothing is sent again blindly: `cops-grid sync` asks the backend what happened",
        ) from None


def tool_failure(
    tool: str, proc: subprocess.CompletedProcess[str], errors: ToolErrors, *, what: str = ""
) -> BackendError | CredentialError:
    """The error a tool's non-zero exit means, from the family's fragments."""
    text = errors.said(proc)
    tool = f"{tool} {what}" if what else tool
    message = f"{tool}: {text}"
    if any(m in text for m in errors.credential):
        hint = "create a proxy with `cops-grid proxy init`"
        return CredentialError(f"{errors.family}: {message}", hint=hint)
    if any(m in text for m in errors.uncertain):
        return DeliveryUncertain(
            message, backend=errors.family, hint="`cops-grid sync` asks the backend what happened"
        )
    if any(m in text for m in errors.unreachable):
        return BackendUnavailable(message, backend=errors.family, hint=errors.unreachable_hint)
    return BackendRejected(f"{tool} refused: {text}", backend=errors.family, hint=errors.rejected_hint)
