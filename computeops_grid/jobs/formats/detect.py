"""Which format a job file is in, from its content first and its extension second.

* ADL: XML whose root is an ``ActivityDescription`` (or ``ActivityDescriptions``);
* xRSL: ``&``, ``+`` or ``(`` first, after ``(* comments *)``;
* JDL: ``[`` first, or ``Name = value;`` lines (a JDL without its brackets);
* HTCondor submit file: ``key = value`` lines and a ``queue`` statement;
* anything else is YAML (the job model's own format).
"""

from __future__ import annotations

import re
from pathlib import Path

FORMATS = ("yaml", "jdl", "xrsl", "adl", "sub")
EXTENSIONS = {
    ".yaml": "yaml", ".yml": "yaml", ".jdl": "jdl", ".xrsl": "xrsl", ".rsl": "xrsl", ".adl": "adl",
    ".xml": "adl", ".sub": "sub", ".submit": "sub", ".condor": "sub", ".jdf": "sub",
}  # fmt: skip
_RSL_COMMENT = re.compile(r"\(\*.*?\*\)", re.DOTALL)
_HASH_COMMENT = re.compile(r"^\s*(#|//).*$", re.MULTILINE)
_QUEUE = re.compile(r"^\s*queue\b", re.IGNORECASE | re.MULTILINE)
_ASSIGN = re.compile(r"^\s*[+A-Za-z_][A-Za-z0-9_.]*\s*=", re.MULTILINE)
_JDL_LINE = re.compile(r"^\s*[A-Za-z][A-Za-z0-9_.]*\s*=\s*.*;\s*$", re.MULTILINE)
_YAML_KEY = re.compile(r"^\s*(-\s+)?[A-Za-z_][\w.-]*\s*:(\s|$)", re.MULTILINE)


def _by_content(text: str) -> str | None:
    bare = _RSL_COMMENT.sub("", text).lstrip()
    if bare.startswith("<"):
        return "adl" if re.search(r"<(\w+:)?ActivityDescriptions?\b", bare) else None
    if bare[:1] in ("&", "+") or (bare.startswith("(") and "=" in bare.split(")", 1)[0]):
        return "xrsl"
    hashless = _HASH_COMMENT.sub("", text).lstrip()
    checks = (
        (hashless.startswith("[") and "=" in hashless, "jdl"),
        (bool(_YAML_KEY.search(hashless)) and not _ASSIGN.search(hashless), "yaml"),
        (bool(_QUEUE.search(hashless)) and bool(_ASSIGN.search(hashless)), "sub"),
        (bool(_JDL_LINE.search(hashless)), "jdl"),
    )
    return next((fmt for found, fmt in checks if found), None)


def detect(text: str, path: Path) -> str:
    """``yaml``, ``jdl``, ``xrsl``, ``adl`` or ``sub``."""
    return _by_content(text) or EXTENSIONS.get(path.suffix.lower(), "yaml")
