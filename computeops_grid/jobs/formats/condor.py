"""HTCondor submit files into the job model, read and expanded by HTCondor's own submit parser
(``htcondor2.Submit``: its macro engine gives each job's values, ``$(Process)``, ``$Fn()`` ...).

Each ``queue`` statement is a group of jobs (settings before it apply; later ones override);
``queue N``, ``queue ... in (...)``, ``from (...)``, ``from FILE`` and ``matching`` give the
jobs, and the job's variables fold them back into one parametric job. ``from COMMAND |``
would run a command: it is refused. ``matching`` and ``from FILE`` are relative to the submit
file's directory (``condor_submit`` run there would read the same).

Mapping: ``executable`` (sent with the job unless ``transfer_executable = false``) and
``arguments`` (old and new syntax) -> command and arguments; ``environment`` -> environment;
``transfer_input_files`` -> inputs; ``transfer_output_files`` -> outputs; ``request_cpus``,
``request_memory`` (MB unless a unit), ``request_gpus`` -> resources; ``+MaxWallTimeMins``,
the CE's ``+maxWallTime`` (minutes) or ``allowed_execute_duration`` (seconds) -> wall time;
``container_image``, ``docker_image`` or ``+SingularityImage`` -> image. The HTCondor-CE
backend takes no per-job option, so site attributes (``requirements``, ``+DESIRED_Sites``,
``accounting_group`` ...) are listed as ignored.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from computeops_grid import extras
from computeops_grid.jobs.formats import wrapper
from computeops_grid.jobs.formats.common import Context, Draft, Group, command_for, is_url, job_name

_QUEUE = re.compile(r"^[ \t]*queue\b(.*)$", re.IGNORECASE | re.MULTILINE)
_QARGS = re.compile(r"^\s*(\d+)?\s*(?:(.*?)\s+)?\b(from|in|matching)\b\s*(.*)$", re.IGNORECASE | re.DOTALL)
_UNITS = {"": 2**20, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_SILENT = frozenset({"should_transfer_files", "when_to_transfer_output", "transfer_executable", "universe"})
_LOGS = {
    "output": "the job's output is kept as its log (`cops-grid logs`), not in a file",
    "error": "the job's errors are kept as its log (`cops-grid logs`), not in a file",
    "log": "HTCondor's event log: `cops-grid status` follows the job instead",
}
_MAPPED = frozenset(
    [
        "executable",
        "arguments",
        "args",
        "environment",
        "env",
        "transfer_input_files",
        "transfer_output_files",
        "request_cpus",
        "request_memory",
        "request_gpus",
        "container_image",
        "docker_image",
        "my.singularityimage",
        "my.maxwalltimemins",
        "my.maxwalltime",
        "my.maxmemory",
        "my.xcount",
        "allowed_execute_duration",
        "batch_name",
        "my.jobbatchname",
        "initialdir",
        "my.copsgridoutputs",
    ]
)
_ORIGINS = {
    "request_cpus": ("request_cpus", "cores"),
    "request_memory": ("request_memory", "memory"),
    "request_gpus": ("request_gpus", "gpus"),
    "my.maxwalltimemins": ("+MaxWallTimeMins", "walltime"),
}
_OURS = frozenset({"my.copsgridid", "leave_in_queue", "initialdir", "log", "output", "error"})


def bindings() -> Any:
    os.environ.setdefault("CONDOR_CONFIG", "/dev/null")  # a client reading a file needs none
    with extras.needed("reading HTCondor submit files", "htcondor"):
        import htcondor2  # noqa: PLC0415 - only submit files pay for loading the bindings
    return htcondor2


def split_args(text: str) -> list[str]:
    """HTCondor's arguments: new syntax ``"a 'b c' 'it''s'"`` (``""`` is ``"``), or the old one
    (words separated by spaces, ``\\"`` a quote)."""
    text = text.strip()
    if not (len(text) >= 2 and text[0] == text[-1] == '"'):
        return [w.replace('\\"', '"') for w in text.split()]
    words, word, quoted, started, i = [], "", False, False, 0
    body = text[1:-1].replace('""', '"')
    while i < len(body):
        char = body[i]
        if char == "'" and quoted and body[i + 1 : i + 2] == "'":
            word, i = word + "'", i + 2
            continue
        if char == "'":
            quoted, started = not quoted, True
        elif char in " \t" and not quoted:
            if started or word:
                words.append(word)
            word, started = "", False
        else:
            word, started = word + char, True
        i += 1
    if started or word:
        words.append(word)
    return words


def split_env(text: str) -> dict[str, str]:
    stripped = text.strip()
    pairs = (
        split_args(stripped) if stripped.startswith('"') else [p for p in stripped.split(";") if p.strip()]
    )
    return dict(p.strip().partition("=")[::2] for p in pairs)


def memory_bytes(text: str) -> int | None:
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.IGNORECASE)
    return int(float(found.group(1)) * _UNITS[found.group(2).upper()]) if found else None


def _segments(text: str) -> tuple[list[tuple[str, int]], str]:
    """The text each ``queue`` statement sees (the settings before it) and its line; the rest."""
    found: list[tuple[str, int]] = []
    kept: list[str] = []
    pos = 0
    for match in _QUEUE.finditer(text):
        if match.start() < pos:
            continue  # inside the previous statement's `from (` block
        end = match.end()
        if re.search(r"\(\s*$", match.group(1)):  # items in the lines up to `)`
            close = re.compile(r"^\s*\)\s*$", re.MULTILINE).search(text, end)
            end = close.end() if close else len(text)
        kept.append(text[pos : match.start()])
        found.append(
            ("".join(kept) + text[match.start() : end] + "\n", text.count("\n", 0, match.start()) + 1)
        )
        pos = end
    return found, text[pos:]


@contextmanager
def _directory(path: Path) -> Iterator[None]:
    """``matching`` and ``from FILE`` are read by HTCondor relative to the working directory."""
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _item_rows(text: str) -> list[dict[str, str]]:
    """The items of the queue statement, as HTCondor reads them.

    ``htcondor2.Submit.itemdata()`` of 24.0 cuts each item into characters (and its private
    reader joins the variables without a separator); the version 1 bindings that come with it
    read them right, so they are used while they are there.
    """
    try:
        import htcondor  # noqa: PLC0415

        rows = list(htcondor.Submit(text).itemdata())
    except ImportError:  # bindings without version 1: their own reader
        rows = list(bindings().Submit(text).itemdata() or [])
    return [r if isinstance(r, dict) else {"Item": str(r)} for r in rows]


def _items(sub: Any, text: str, ctx: Context, line: int) -> tuple[int, list[dict[str, str]] | None]:
    """``(count, items)`` of the queue statement; items are ``None`` without ``in/from/matching``."""
    qargs = sub.getQArgs() or ""
    match = _QARGS.match(qargs)
    if not match:
        count = qargs.strip() or "1"
        if not count.isdigit():
            raise ctx.error(f"cannot read `queue {qargs}`", line=line, attribute="queue")
        return int(count), None
    if match.group(3).lower() == "from" and match.group(4).rstrip().endswith("|"):
        raise ctx.error(
            "`queue ... from COMMAND |` runs a command: cops-grid does not run it",
            line=line, attribute="queue", hint="run the command, then `queue ... from` its output file",
        )  # fmt: skip
    with _directory(Path(ctx.path).resolve().parent):
        try:
            rows = _item_rows(text)
        except (RuntimeError, ValueError) as exc:
            raise ctx.error(f"HTCondor cannot read the items: {exc}", line=line, attribute="queue") from None
    return int(match.group(1) or 1), rows


def _key_line(text: str, key: str, first: int) -> int | None:
    name = re.escape(key[3:]) if key.lower().startswith("my.") else re.escape(key)
    prefix = r"(\+|MY\.)" if key.lower().startswith("my.") else ""
    match = re.compile(rf"^[ \t]*{prefix}{name}[ \t]*=", re.IGNORECASE | re.MULTILINE).search(text)
    return text.count("\n", 0, match.start()) + 1 if match else first


def _rows(count: int, items: list[dict[str, str]] | None) -> list[dict[str, str]]:
    """Each job's variables, in HTCondor's order (``Step`` within an item, ``Process`` overall)."""
    rows: list[dict[str, str]] = []
    for item_index, item in enumerate(items if items is not None else [{}]):
        for step in range(count):
            row = dict(item)
            row.update(Step=str(step), ItemIndex=str(item_index), Process=str(len(rows)))
            rows.append(row)
    return rows


def _expand(sub: Any, key: str) -> str:
    try:
        return str(sub.expand(key))
    except KeyError:  # `key =` with nothing after it
        return ""


class _Job:
    """One job's expanded values (HTCondor's macro engine) by lower-case key."""

    def __init__(self, sub: Any, keys: dict[str, str], row: dict[str, str]) -> None:
        for name, value in row.items():
            sub[name] = value
        sub["ProcId"], sub["Cluster"], sub["ClusterId"] = row["Process"], "0", "0"
        self.values = {low: _expand(sub, key) for low, key in keys.items() if low in _MAPPED or low in _LOGS}
        self.raw = {low: sub[key] for low, key in keys.items()}

    def get(self, key: str) -> str:
        return str(self.values.get(key, "")).strip()


def _files(text: str) -> list[str]:
    return [f.strip() for f in text.split(",") if f.strip()]


def _image(job: _Job, draft: Draft, ctx: Context, lines: dict[str, int | None]) -> None:
    container, docker, singularity = (
        job.get("container_image"),
        job.get("docker_image"),
        job.get("my.singularityimage"),
    )
    if singularity and not re.fullmatch(r'"[^"]*"', singularity):
        ctx.ignore("+SingularityImage", lines.get("my.singularityimage"), "an expression, not an image name")
        singularity = ""
    chosen = (
        container
        or (docker and (docker if "://" in docker else f"docker://{docker}"))
        or singularity.strip('"')
    )
    draft.image = chosen or None


def _payload(job: _Job, draft: Draft, ctx: Context, lines: dict[str, int | None]) -> bool:
    executable = job.get("executable")
    if not executable:
        raise ctx.error("required setting is missing", line=None, attribute="executable")
    args = split_args(job.get("arguments") or job.get("args"))
    call = wrapper.parse(executable, args) if wrapper.is_wrapper(executable) else None
    if call is not None:
        wrapper.apply(call, draft, ctx, "arguments", lines.get("arguments"))
        return True
    sent = job.raw.get("transfer_executable", "true").strip().lower() not in ("false", "no", "0")
    shipped = [*draft.inputs, executable] if sent and executable not in draft.inputs else draft.inputs
    draft.command, draft.inputs = command_for(executable, shipped)
    draft.arguments = args
    draft.origin.update(
        command=("executable", lines.get("executable")), arguments=("arguments", lines.get("arguments"))
    )
    return False


def _resources(job: _Job, draft: Draft, ctx: Context, lines: dict[str, int | None]) -> None:
    def number(key: str, label: str) -> int | None:
        text = job.get(key)
        if text and not text.isdigit():
            ctx.ignore(label, lines.get(key), f"{text!r} is an expression, not a number")
            return None
        return int(text) if text else None

    draft.cores = number("request_cpus", "request_cpus") or number("my.xcount", "+xcount")
    draft.gpus = number("request_gpus", "request_gpus") or draft.gpus
    memory = job.get("request_memory")
    draft.memory = memory_bytes(memory) if memory else None
    if memory and draft.memory is None:
        ctx.ignore("request_memory", lines.get("request_memory"), f"{memory!r} is an expression, not a size")
    if not memory and number("my.maxmemory", "+maxMemory"):
        draft.memory = (number("my.maxmemory", "+maxMemory") or 0) * 2**20
    minutes = number("my.maxwalltimemins", "+MaxWallTimeMins") or number("my.maxwalltime", "+maxWallTime")
    seconds = number("allowed_execute_duration", "allowed_execute_duration")
    draft.walltime = seconds or (minutes * 60 if minutes else None)
    for key, (shown, field) in _ORIGINS.items():
        draft.origin[field] = (shown, lines.get(key))


def _draft(job: _Job, ctx: Context, lines: dict[str, int | None], row: dict[str, str]) -> tuple[Draft, bool]:
    draft = Draft(name="", command="")
    ours = wrapper.is_wrapper(job.get("executable"))
    base = "" if ours else job.get("initialdir")
    for item in _files(job.get("transfer_input_files")):
        if is_url(item):
            ctx.ignore("transfer_input_files", lines.get("transfer_input_files"), f"{item}: remote transfer")
            continue
        draft.inputs.append(item if not base or item.startswith("/") else f"{base.rstrip('/')}/{item}")
    draft.environment = split_env(job.get("environment") or job.get("env"))
    _image(job, draft, ctx, lines)
    ours = _payload(job, draft, ctx, lines)
    _resources(job, draft, ctx, lines)
    listed = job.get("transfer_output_files") or job.get("my.copsgridoutputs").strip('"')
    logs = {job.get("output"), job.get("error")} - {""}
    draft.outputs = [o for o in _files(listed) if ours or o not in logs]
    if "transfer_output_files" not in job.raw and not ours:  # set to nothing: no output comes back
        draft.outputs = ["*"]
        ctx.note(
            "transfer_output_files", None, "not set: HTCondor returns every new file, read as outputs '*'"
        )
    if base and not ours:
        ctx.note(
            "initialdir",
            lines.get("initialdir"),
            f"inputs are read from {base}; the job runs in its own directory",
        )
    raw = (job.get("batch_name") or job.get("my.jobbatchname")).strip('"')
    if ours and not re.fullmatch(r"[0-9a-f]{12}", row.get("cops_id", "0" * 12)):
        raw = row["cops_id"]
    elif ours and not raw:
        ctx.note("queue", None, "cops_id is a cops-grid id, not a name: the jobs are named after the file")
    draft.name = job_name(raw or ctx.stem, ctx, "batch_name", lines.get("batch_name"))
    draft.origin.update(
        inputs=("transfer_input_files", lines.get("transfer_input_files")),
        outputs=("transfer_output_files", lines.get("transfer_output_files")),
        environment=("environment", lines.get("environment")),
    )  # fmt: skip
    return draft, ours


def _leftovers(
    sub: Any, keys: dict[str, str], lines: dict[str, int | None], ctx: Context, ours: bool
) -> None:
    for low, key in keys.items():
        shown = f"+{key[3:]}" if low.startswith("my.") else key
        if low in _MAPPED and re.search(r"\$\(Cluster(Id)?\)", str(sub[key]), re.IGNORECASE):
            ctx.note(shown, lines[low], "$(Cluster) is known only once HTCondor has the job: read as 0")
        if low in _MAPPED or low in _SILENT or (ours and (low in _OURS or low.startswith("cops_"))):
            continue
        if low in _LOGS:
            ctx.note(shown, lines[low], _LOGS[low])
        else:
            ctx.ignore(shown, lines[low])


def _submit(htcondor2: Any, text: str, ctx: Context, line: int) -> Any:
    try:
        return htcondor2.Submit(text)
    except (ValueError, RuntimeError) as exc:
        bad = re.compile(
            r"^(?![ \t]*(#|$|[+\w.]+[ \t]*=|queue\b|include\b|if\b|elif\b|else\b|endif\b|\)))", re.I | re.M
        )
        found = bad.search(text)
        where = text.count("\n", 0, found.start()) + 1 if found else line
        raise ctx.error(f"HTCondor's submit parser refuses it ({exc})", line=where) from None


def read(ctx: Context) -> list[Group]:
    htcondor2 = bindings()
    segments, rest = _segments(ctx.text)
    if not segments:
        raise ctx.error(
            "no `queue` statement: HTCondor submits no job without one", hint="end the file with `queue`"
        )
    if re.search(r"^[ \t]*[^#\s]", rest, re.MULTILINE):
        ctx.ignore(
            "queue",
            ctx.text.count("\n", 0, len(ctx.text) - len(rest)) + 1,
            "settings after the last queue statement",
        )
    groups: list[Group] = []
    for text, line in segments:
        sub = _submit(htcondor2, text, ctx, line)
        keys = {k.lower(): k for k in sub}
        lines = {low: _key_line(text, key, line) for low, key in keys.items()}
        universe = sub["universe"].strip().lower() if "universe" in keys else "vanilla"
        if universe not in ("vanilla", "container", "docker"):
            ctx.ignore("universe", lines.get("universe"), f"{universe} universe: read as the job it runs")
        count, items = _items(sub, text, ctx, line)
        drafts, hints, ours = [], [], False
        for row in _rows(count, items):
            draft, ours = _draft(_Job(sub, keys, row), ctx, lines, row)
            drafts.append(draft)
            hints.append({k: v for k, v in row.items() if k != "Process" and not k.startswith("cops_")})
        _leftovers(sub, keys, lines, ctx, ours)
        groups.append(Group(drafts, hints, line=line, ours=ours))
    return groups
