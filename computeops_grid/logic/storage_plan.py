"""Who moves each storage file of a job, for ``cops-grid submit --dry-run``.

The CE's own stager where the backend has one and it speaks the protocol (A-REX fetches
root://, https:// and davs:// inputs: ``backends/arc/storage_stager.py``); otherwise the pilot
wrapper on the worker node, before the payload (inputs) or after it (outputs), with the tool
it finds there (``worker/cops_transfer.py`` probes them and names the one used in its report).
"""

from __future__ import annotations

from collections.abc import Sequence

from computeops_grid.backends.arc.storage_stager import arex_can
from computeops_grid.errors import JobFileError
from computeops_grid.jobs.model import JobSpec
from computeops_grid.jobs.record import JobRecord
from computeops_grid.logic.session import Session

WRAPPER_TOOLS = {
    "root": "xrdcp (gfal-copy if absent); checked: adler32 from xrdfs query checksum",
    "xroot": "xrdcp (gfal-copy if absent); checked: adler32 from xrdfs query checksum",
    "davs": "curl (Python's HTTPS if absent); checked: adler32 from HEAD Want-Digest",
    "https": "curl (Python's HTTPS if absent); checked: adler32 from HEAD Want-Digest",
    "s3": "the wrapper's S3 client (SigV4, keys from the node); checked: MD5 against the ETag",
}


def _wrapper(url: str, when: str) -> str:
    return f"pilot wrapper on the node, {when}: {WRAPPER_TOOLS.get(url.split('://', 1)[0].lower(), '?')}"


def movers(backend_type: str, spec: JobSpec) -> list[str]:
    """One line per storage file of ``spec``: direction, file, URL and who moves it."""
    lines = []
    for item in spec.stage_in:
        if backend_type == "arc" and arex_can(item.url):
            who = "A-REX data staging on the CE, before the job starts"
        else:
            who = _wrapper(item.url, "before the payload")
        lines.append(f"{item.name} <- {item.url}: {who}")
    for out in spec.stage_out:
        lines.append(f"{out.path} -> {out.to}: {_wrapper(out.to, 'after the payload')}")
    return lines


def plan(session: Session, records: Sequence[JobRecord]) -> list[str]:
    """``<job>: <line>`` for every storage file of ``records`` (empty when none names storage)."""
    lines = []
    for record in records:
        if not (record.spec.stage_in or record.spec.stage_out):
            continue
        kind = str(getattr(session.backend(record.backend), "name", record.backend))
        lines += [f"{record.spec.name}: {line}" for line in movers(kind, record.spec)]
    return lines


# Backends that ship the wrapper's mover beside it (or stage themselves), tested end to end in
# tests/storage/. The others ship the wrapper alone: a job naming storage there is refused
# before anything is stored, rather than failing on the node.
MOVES_STORAGE = frozenset({"local", "slurm", "arc"})


def refuse_unsupported(session: Session, records: Sequence[JobRecord]) -> None:
    for record in records:
        if not (record.spec.stage_in or record.spec.stage_out):
            continue
        kind = str(getattr(session.backend(record.backend), "name", record.backend))
        if kind not in MOVES_STORAGE:
            raise JobFileError(
                f"names storage URLs, which the {kind} backend ({record.backend}) does not move yet",
                path=record.source,
                field="inputs" if record.spec.stage_in else "outputs",
                hint="use the local, slurm or arc backend, or give the file as a sandbox path",
            )
