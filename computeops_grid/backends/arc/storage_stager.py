"""Which storage URLs A-REX's own data staging moves for a job, and which the wrapper moves.

A-REX fetches a job's inputs before the job starts with its data delivery (DTR) and the
data-management plugins (DMCs) installed on the CE. Debian's ARC 6.17 has: ``http`` in
``nordugrid-arc-plugins-needed`` (https://, davs://) and ``xrootd`` in
``nordugrid-arc-plugins-xrootd`` (root://); it has no S3 plugin (``s3://`` would need the
gfal2 plugin with gfal2's S3 support). So A-REX stages root://, https:// and davs:// inputs;
the wrapper moves s3:// inputs and every output with a destination, after the payload, with
the checksum check and the exit code every other backend gives (one behaviour for the user:
outputs stay in the session directory, ``cops-grid get`` returns them when storing failed).
See docs/notes/storage-tests.md for what was measured here.
"""

from __future__ import annotations

from computeops_grid.jobs.model import JobSpec

AREX_SCHEMES = frozenset({"root", "xroot", "https", "davs"})  # the DMCs above


def arex_can(url: str) -> bool:
    return url.split("://", 1)[0].lower() in AREX_SCHEMES


def wrapper_spec(spec: JobSpec) -> JobSpec:
    """The job as the wrapper sees it: without the inputs A-REX stages itself."""
    if not any(arex_can(i.url) for i in spec.stage_in):
        return spec
    return spec.model_copy(update={"stage_in": [i for i in spec.stage_in if not arex_can(i.url)]})
