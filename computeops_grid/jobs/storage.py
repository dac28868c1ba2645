"""Grid storage in a job file: ``inputs:`` URLs and ``outputs: {path, to}`` destinations.

A job's ``inputs:`` may name storage URLs (``root://``, ``davs://``, ``https://``, ``s3://``),
placed in the job's directory under their base name or as ``{url: ..., name: ...}``; its
``outputs:`` may carry a destination, ``{path: "hist-*.root", to: "root://host//store/user/me/"}``
(a ``to`` ending in ``/`` is a directory for every match). The model keeps them apart from the
sandbox files every backend already handles: URL inputs go to ``stage_in``, outputs with a
destination to ``stage_out`` (their ``path`` stays in ``outputs`` too, so the file is kept in
the sandbox and ``cops-grid get`` still returns it when storing failed).

Credentials never come from the job file: a URL carrying a user name, a password or a signed
query is refused here. The node's X.509 proxy, WLCG bearer token or S3 keys are used where
the bytes are moved (``worker/cops_transfer.py``, or the CE's own stager).
"""

from __future__ import annotations

import posixpath
import re
from typing import Any
from urllib.parse import urlsplit

SCHEMES = {"root": "XRootD", "xroot": "XRootD", "davs": "WebDAV", "https": "HTTPS", "s3": "S3"}
SECRET_QUERY = re.compile(
    r"(^|&)(authz|access_token|token|x-amz-signature|x-amz-credential|signature)=", re.I
)
PLAIN_NAME = re.compile(r"^[A-Za-z0-9._+${}-][A-Za-z0-9._+${}-]{0,254}$")  # ${param} before expansion


def looks_like_url(text: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text))


def url_problem(url: str) -> str | None:  # noqa: PLR0911 - one return per problem
    """Why ``url`` is not a usable storage URL, or None."""
    if not isinstance(url, str) or not looks_like_url(url):
        return f"{url!r} is not a URL (use root://, davs://, https:// or s3://)"
    scheme = url.split("://", 1)[0].lower()
    if scheme not in SCHEMES:
        return f"{url!r}: the scheme {scheme}:// is not supported (use root://, davs://, https:// or s3://)"
    if any(c.isspace() for c in url) or "\x00" in url:
        return f"{url!r} contains white space"
    parts = urlsplit(url)
    shown = f"{scheme}://{parts.hostname or ''}{parts.path}"  # never echo a secret back
    if parts.username or parts.password:
        return f"{shown!r} carries credentials: they come from the node (proxy, token, S3 keys), not the job"
    if SECRET_QUERY.search(parts.query):
        return f"{shown!r} carries a token in its query: credentials never come from the job file"
    if not parts.netloc:
        return f"{url!r} names no host (or bucket)"
    if scheme in ("root", "xroot") and not url.split("://", 1)[1].split("/", 1)[-1].startswith("/"):
        return f"{url!r}: an XRootD URL needs a double slash before the path (root://host//store/...)"
    if not parts.path.strip("/"):
        return f"{url!r} names no file or directory"
    return None


def check_url(url: str) -> str:
    problem = url_problem(url)
    if problem:
        raise ValueError(problem)
    return url


def input_name(url: str, name: str = "") -> str:
    """Where an input URL lands in the job's directory: ``name`` or the URL's base name."""
    chosen = name or posixpath.basename(urlsplit(url).path)
    if not PLAIN_NAME.match(chosen) or chosen in (".", ".."):
        raise ValueError(f"{chosen!r} is not a plain file name for {url!r}: give `name:`")
    return chosen


def input_problem(entry: Any) -> str | None:  # noqa: PLR0911 - one return per problem
    """Why an ``inputs:`` entry that is (or looks like) a storage URL cannot be used, or None."""
    if isinstance(entry, dict):
        unknown = sorted(set(entry) - {"url", "name"})
        if unknown:
            return f"unknown key(s) {', '.join(map(str, unknown))} (an input URL is {{url: ..., name: ...}})"
        if "url" not in entry:
            return "an input given as a mapping needs `url:` (and optionally `name:`)"
        url, name = entry["url"], entry.get("name", "")
        if not isinstance(name, str):
            return "`name:` must be text"
    elif isinstance(entry, str) and looks_like_url(entry):
        url, name = entry, ""
    else:
        return None
    problem = url_problem(url)
    if problem:
        return problem
    try:
        input_name(url, name)
    except ValueError as exc:
        return str(exc)
    return None


def output_problem(entry: Any) -> str | None:  # noqa: PLR0911 - one return per problem
    """Why an ``outputs:`` entry given as ``{path, to}`` cannot be used, or None."""
    if isinstance(entry, str) and looks_like_url(entry):
        return (
            f"{entry!r}: an output is a path in the job's directory; write {{path: ..., to: URL}} to store it"
        )
    if not isinstance(entry, dict):
        return None
    unknown = sorted(set(entry) - {"path", "to"})
    if unknown:
        return f"unknown key(s) {', '.join(map(str, unknown))} (an output is {{path: ..., to: URL}})"
    if not isinstance(entry.get("path"), str) or not entry["path"]:
        return "an output given as a mapping needs `path:` (a file or glob in the job's directory)"
    path = entry["path"]
    if path.startswith("/") or ".." in path.split("/") or "=" in path:
        return f"output {path!r} must be a relative path inside the job directory (without '=')"
    if "to" not in entry:
        return "an output given as a mapping needs `to:` (the storage URL)"
    return url_problem(entry["to"])


def explain_entries(field: str, value: Any) -> Any:
    """For the field validators: the first unusable storage entry of ``inputs``/``outputs``, named."""
    if isinstance(value, list):
        check = input_problem if field == "inputs" else output_problem
        for number, entry in enumerate(value, start=1):
            problem = check(entry)
            if problem:
                raise ValueError(f"entry {number}: {problem}")
    return value


def split_entries(data: Any) -> Any:
    """Move the usable storage entries of ``inputs``/``outputs`` to ``stage_in``/``stage_out``;
    unusable ones stay where they are, for the field validators to explain."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    inputs, outputs = data.get("inputs"), data.get("outputs")
    if isinstance(inputs, list):
        moved = [
            e for e in inputs if (isinstance(e, dict) or looks_like_url(str(e))) and not input_problem(e)
        ]
        if moved:
            data["inputs"] = [e for e in inputs if not any(e is m for m in moved)]
            urls = [m if isinstance(m, dict) else {"url": m} for m in moved]
            data["stage_in"] = [*data.get("stage_in", []), *urls]
    if isinstance(outputs, list):
        stored = [e for e in outputs if isinstance(e, dict) and not output_problem(e)]
        if stored:
            data["outputs"] = [
                e["path"] if isinstance(e, dict) and not output_problem(e) else e for e in outputs
            ]
            data["stage_out"] = [*data.get("stage_out", []), *stored]
    return data


def describe(url: str) -> str:
    """The protocol's name, for plans and messages."""
    return SCHEMES.get(url.split("://", 1)[0].lower(), "?")
