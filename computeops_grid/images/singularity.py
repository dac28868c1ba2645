"""What DUCC adds to every flat root filesystem so Singularity/Apptainer can run it.

After ``ducc/singularity/dotfiles.go`` and ``startup_files.go`` (cvmfs/cvmfs): the
``.singularity.d`` tree, the mount-point directories, the ``/singularity`` style symlinks,
a runscript from the image's ENTRYPOINT/CMD and ``10-docker2singularity.sh`` from its Env.
Beyond DUCC, ``srv`` and ``cvmfs`` mount points are created.
Unlike DUCC, existing ``etc/hosts`` and ``etc/resolv.conf`` are kept (created empty only if
missing: runtimes bind the host's files onto them); cvmfs/README.md gives the reasons.
"""

from __future__ import annotations

from typing import Any

_DIRS = (
    ".singularity.d",
    ".singularity.d/libs",
    ".singularity.d/actions",
    ".singularity.d/env",
    "dev",
    "proc",
    "root",
    "var/tmp",
    "tmp",
    "etc",
    "sys",
    "home",
    "srv",  # not DUCC: mount points the pilot wrapper binds (charliecloud needs them to exist)
    "cvmfs",
)
_LINKS = (
    ("singularity", ".singularity.d/runscript"),
    (".run", ".singularity.d/actions/run"),
    (".exec", ".singularity.d/actions/exec"),
    (".test", ".singularity.d/actions/test"),
    (".shell", ".singularity.d/actions/shell"),
    ("environment", ".singularity.d/env/90-environment.sh"),
)
_ACTIONS = {
    "exec": '#!/bin/sh\nfor script in /.singularity.d/env/*.sh; do . "$script"; done\nexec "$@"\n',
    "run": '#!/bin/sh\nfor script in /.singularity.d/env/*.sh; do . "$script"; done\n'
    'exec /.singularity.d/runscript "$@"\n',
    "shell": '#!/bin/sh\nfor script in /.singularity.d/env/*.sh; do . "$script"; done\nexec /bin/sh "$@"\n',
    "test": "#!/bin/sh\nexit 0\n",
}
_RUNSCRIPT = """#!/bin/sh
OCI_ENTRYPOINT='{entrypoint}'
OCI_CMD='{cmd}'
if [ $# -eq 0 ]; then eval "set -- $OCI_CMD"; fi
eval "set -- $OCI_ENTRYPOINT \\"\\$@\\""
if [ $# -eq 0 ]; then exec /bin/sh; fi
exec "$@"
"""


def _dq(text: str) -> str:
    """Double-quote for sh (inside a single-quoted assignment, so ' is escaped too)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`")
    return '"' + escaped.replace("'", "'\\''") + '"'


def runscript(config: dict[str, Any]) -> str:
    cfg = config.get("config") or {}
    entrypoint = " ".join(_dq(a) for a in cfg.get("Entrypoint") or [])
    cmd = " ".join(_dq(a) for a in cfg.get("Cmd") or [])
    return _RUNSCRIPT.format(entrypoint=entrypoint, cmd=cmd)


def environment(config: dict[str, Any]) -> str:
    lines = ["#!/bin/sh"]
    for item in (config.get("config") or {}).get("Env") or []:
        key, sep, value = str(item).partition("=")
        if not key.replace("_", "a").isalnum():
            continue
        if not sep:
            lines.append(f'export {key}="${{{key}:-}}"')
        elif key == "PATH":
            lines.append(f"export PATH={_dq(value)}")
        else:
            lines.append(f'export {key}="${{{key}:-{_dq(value)}}}"')
    return "\n".join(lines) + "\n"


def dotfiles(config: dict[str, Any]) -> list[tuple[str, str, int, str]]:
    """``(path, kind, mode, content)``: kind ``d`` dir, ``l`` symlink, ``f`` file, ``f?`` file if missing."""
    items: list[tuple[str, str, int, str]] = [(d, "d", 0o755, "") for d in _DIRS]
    items += [(name, "l", 0o777, target) for name, target in _LINKS]
    items += [(f".singularity.d/actions/{n}", "f", 0o755, body) for n, body in _ACTIONS.items()]
    items += [
        (".singularity.d/runscript", "f", 0o755, runscript(config)),
        (".singularity.d/startscript", "f", 0o755, "#!/bin/sh\n"),
        (".singularity.d/env/10-docker2singularity.sh", "f", 0o755, environment(config)),
        (".singularity.d/env/90-environment.sh", "f", 0o755, "#!/bin/sh\n"),
        ("etc/hosts", "f?", 0o644, ""),
        ("etc/resolv.conf", "f?", 0o644, ""),
    ]
    return items
