"""What a job's environment may carry from the submitting shell: an allow-list, never credentials.

Every backend that starts the wrapper with an inherited environment uses this one list:
the local backend for its runner and wrapper, Slurm for ``sbatch --export=`` (Slurm would
otherwise copy the whole shell, tokens included, into the job and its own state). The
payload's environment is built by the wrapper itself from PATH, HOME, the site's
pass-through list and the job's declared ``environment:`` (``--env`` in the argv).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

# What the pilot wrapper itself reads (worker/cops_pilot.py): PATH to find runtimes, HOME and
# XDG_CACHE_HOME for its probe cache, the temporary directory, the runtime process's own
# variables (host_env_for_runtime), where the docker engine is (Docker.client_env); then the
# non-credential part of its default pass-through list (DEFAULT_PASS_ENV) and the locale.
RUNNER_ENV = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "XDG_RUNTIME_DIR", "XDG_CACHE_HOME", "TMPDIR", "TEMP", "TMP",
     "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY",
     "LANG", "LANGUAGE", "TZ", "OMP_NUM_THREADS", "X509_CERT_DIR", "X509_VOMS_DIR"}
)  # fmt: skip
RUNNER_ENV_PREFIXES = ("COPS_PILOT_", "LC_")  # the wrapper's site settings; locale categories
# Never passed, even where an allowed name or prefix matches: a second line of defence.
CREDENTIAL_NAME = re.compile(r"TOKEN|SECRET|PASSW|CREDENTIAL|PRIVATE|AUTH|PROXY|^AWS_", re.IGNORECASE)


def runner_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of a job's runner and wrapper: the allow-list, without credentials.

    The payload's own environment is built by the wrapper (PATH, HOME, its pass-through list
    and the job's ``environment:``, given as ``--env`` in the argv), never this one.
    """
    env = {
        name: value
        for name, value in environ.items()
        if (name in RUNNER_ENV or name.startswith(RUNNER_ENV_PREFIXES)) and not CREDENTIAL_NAME.search(name)
    }
    env.setdefault("PATH", os.defpath)
    return env


def exported_names(environ: Mapping[str, str]) -> list[str]:
    """The names of :func:`runner_env` present in ``environ``, sorted (for ``--export=``)."""
    return sorted(name for name in runner_env(environ) if name in environ)
