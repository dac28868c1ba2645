"""Render a :class:`Study`: Markdown, a static HTML page with matplotlib plots, and raw JSON.

Generic over systems and workloads. The report opens with ``study.answer`` (drawn from the
data by whoever ran the study), then the overhead matrix (ratio to the baseline with its
confidence interval), the detailed table, the systems that could not run and why, and
the feature matrix.
"""

from __future__ import annotations

import html
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from computeops_grid.bench.results import Row, Study, summary_rows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Written:
    markdown: Path
    html: Path
    json: Path
    plots: list[Path]


def fmt_value(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"
    return f"{value:.3g} {unit}"


def fmt_ratio(row: Row) -> str:
    if row.summary is None:
        return "error"
    if row.ratio is None:
        return "1 (baseline)"
    r = row.ratio
    mark = "" if r.significant else " ~"
    return f"{r.value:.2f} [{r.low:.2f}-{r.high:.2f}]{mark}"


def matrix_table(study: Study, rows: list[Row]) -> list[list[str]]:
    """Workloads down, systems across: the cost ratio to the baseline with its interval."""
    systems = [s.name for s in study.systems if s.available]
    cells = {(r.workload, r.system): r for r in rows}
    table = [["workload", *systems]]
    for wl in study.workloads:
        if wl.why:
            table.append([wl.name, *("not run" for _ in systems)])
            continue
        table.append([wl.name, *(fmt_ratio(cells[(wl.name, s)]) for s in systems)])
    return table


def detail_table(study: Study, rows: list[Row]) -> list[list[str]]:
    units = {w.name: w.unit for w in study.workloads}
    table = [["workload", "system", "n", "median", "IQR", "ratio", "95% CI", "note"]]
    for r in rows:
        unit = units[r.workload]
        if r.summary is None:
            table.append([r.workload, r.system, f"0/{r.n_failed}", "—", "—", "—", "—", r.error[:120]])
            continue
        ratio = f"{r.ratio.value:.3f}" if r.ratio else "1"
        ci = f"{r.ratio.low:.3f}-{r.ratio.high:.3f}" if r.ratio else ""
        notes = [r.ratio.note] if r.ratio and r.ratio.note else []
        if r.n_failed:
            notes.append(f"{r.n_failed} run(s) failed: {r.error[:80]}")
        n = f"{r.n_ok}" + (f"/{r.n_ok + r.n_failed}" if r.n_failed else "")
        iqr = fmt_value(r.summary.iqr, unit)
        table.append(
            [r.workload, r.system, n, fmt_value(r.summary.median, unit), iqr, ratio, ci, "; ".join(notes)]
        )
    return table


def unavailable_table(study: Study) -> list[list[str]]:
    table = [["system or workload", "version", "why it was not measured"]]
    table += [[s.name, s.version or "—", s.why] for s in study.systems if not s.available]
    table += [[f"{w.name} (workload)", "—", w.why] for w in study.workloads if w.why]
    return table


def feature_table(study: Study) -> list[list[str]]:
    """The feature-matrix columns that no criterion shows."""
    if not study.features:
        return []
    grouped = {k for keys in study.criteria.values() for k in keys}
    keys = [k for k in study.features[0] if k not in grouped]
    return [keys] + [[row.get(k, "") for k in keys] for row in study.features]


def criterion_table(study: Study, criterion: str) -> list[list[str]]:
    """One criterion's columns (measured cells of the feature rows), one row per runtime."""
    keys = ["runtime", *study.criteria.get(criterion, [])]
    if not study.features or len(keys) == 1:
        return []
    return [keys] + [[row.get(k, "not measured") for k in keys] for row in study.features]


def markdown(table: list[list[str]]) -> str:
    if not table:
        return "_none_\n"
    clean = [[c.replace("|", "\\|").replace("\n", " ") for c in row] for row in table]
    lines = ["| " + " | ".join(clean[0]) + " |", "|" + "---|" * len(clean[0])]
    lines += ["| " + " | ".join(row) + " |" for row in clean[1:]]
    return "\n".join(lines) + "\n"


def html_table(table: list[list[str]]) -> str:
    if not table:
        return "<p><em>none</em></p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def resolution_section(study: Study) -> list[tuple[str, str, list[list[str]]]]:
    """How many repetitions ±3 % needed on each steady workload, and what the run reached."""
    res = study.extra.get("resolution")
    if not res:
        return []
    from computeops_grid.bench import resolution  # noqa: PLC0415 - only for full runs

    first = [resolution.Need(**n) for n in res["first"]]
    final = [resolution.Need(**n) for n in res["final"]]
    reached = sum(1 for n in final if resolution.reached(n, res["target"]))
    worst = max(first, key=lambda n: n.needed, default=None)
    text = (
        f"The first pass ({res['first_pass_repeats']} repetitions) measured each steady ratio's 95 % "
        f"interval; its half-width shrinks like 1/sqrt(n), so n_first x (half-width / {res['target']:.0%})^2 "
        f"repetitions reach ±{res['target']:.0%}. The run then repeated the workloads that needed more, "
        f"up to {res['cap']} repetitions and {res['budget_s']:.0f} s ({res['stopped']}; "
        f"{res['done_repeats']} repetitions in all, {res['extension_s']:.0f} s). "
        f"{reached} of {len(final)} steady ratios reached ±{res['target']:.0%}."
    )
    if worst is not None:
        text += f" The noisiest, {worst.workload} on {worst.system}, needed {worst.needed}."
    return [("Resolution", text, resolution.table(first, final, res["target"]))]


def interop_sections(study: Study) -> list[tuple[str, str, list[list[str]]]]:
    """The Docker -> Singularity experiment: its answer, every run, and the commands it ran."""
    data = study.extra.get("interop")
    if not data:
        return []
    runs = [["runtime", "image", "how", "commands", "ran", "output sha256", "differs from the reference"]]
    for r in data["runs"]:
        runs.append(
            [
                r["runtime"],
                r["image"],
                r["how"],
                str(len(r["commands"])),
                "yes" if r["ok"] else f"no: {r['error'][:120]}",
                r["checksum"],
                "; ".join(r["differs"]) or ("identical" if r["ok"] else "—"),
            ]
        )
    steps = [["step", "exit", "seconds", "error"]]
    steps += [[s["what"], str(s["rc"]), f"{s['seconds']:.1f}", s["tail"][:160]] for s in data["steps"]]
    text = (
        f"{data['answer']} Reference: {data['reference']}. The experiment took {data['seconds']:.0f} s; "
        "'images': docker = the Dockerfile built with buildah and published unpacked with "
        "`cops-grid image publish`; roundtrip = the Dockerfile converted to a Singularity definition and "
        "back with `cops-grid image convert`, built and published the same way; sif-from-oci / sif-from-def "
        "= SIFs built by Apptainer from the OCI archive / from the converted definition."
    )
    notes = " ".join(data.get("notes", []))
    return [
        (
            "Interoperability: develop with Docker, deploy with Singularity?",
            text + (" " + notes if notes else ""),
            runs,
        ),
        ("Interoperability: the commands the experiment ran", "", steps),
    ]


CRITERION_TEXT = {
    "security": "Found by running payloads and reading /proc and dpkg on this machine (bench/criteria.py).",
    "administration": (
        "What a site installs and keeps running: dpkg's view of the runtime's packages (less what a "
        "minimal Debian has) and the runtime's processes seen in /proc while a payload runs."
    ),
    "ease of use": (
        "The commands the study ran from a Docker image archive to the payload's output "
        "(interoperability experiment), and the rootless run as an unprivileged account."
    ),
}


def sections(study: Study, rows: list[Row]) -> list[tuple[str, str, list[list[str]]]]:
    legend = (
        f"Cost ratio to {study.baseline} (median of the system / median of the baseline; above 1 = slower), "
        "with a 95 % bootstrap interval; `~` marks an interval that contains 1 (no real difference)."
    )
    return [
        ("Overhead per workload", legend, matrix_table(study, rows)),
        (
            "Measurements",
            "Medians and inter-quartile ranges of every workload on every system.",
            detail_table(study, rows),
        ),
        (
            "Systems and workloads not measured",
            "Found out by the tool on this machine.",
            unavailable_table(study),
        ),
        (
            "Feature matrix",
            "Measured by running payloads on each system, unless a cell says otherwise.",
            feature_table(study),
        ),
        *resolution_section(study),
        *interop_sections(study),
        *(
            (f"Criterion: {name}", CRITERION_TEXT.get(name, ""), criterion_table(study, name))
            for name in study.criteria
        ),
        ("Environment", "", [["key", "value"], *([k, v] for k, v in study.environment.items())]),
    ]


def plot(study: Study, rows: list[Row], out: Path) -> list[Path]:
    """One bar chart of cost ratios (log scale, interval whiskers) per workload and system."""
    import matplotlib  # noqa: PLC0415 - heavy, only when a report is written

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    systems = [s.name for s in study.systems if s.available and s.name != study.baseline]
    workloads = [w.name for w in study.workloads if not w.why]
    cells = {(r.workload, r.system): r for r in rows}
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(workloads)), 4.5))
    width = 0.8 / max(1, len(systems))
    for i, system in enumerate(systems):
        xs, ys, lo, hi = [], [], [], []
        for j, wl in enumerate(workloads):
            r = cells.get((wl, system))
            if r is None or r.ratio is None:
                continue
            xs.append(j + (i - (len(systems) - 1) / 2) * width)
            ys.append(r.ratio.value)
            lo.append(max(0.0, r.ratio.value - r.ratio.low))
            hi.append(max(0.0, r.ratio.high - r.ratio.value))
        ax.bar(xs, ys, width, yerr=[lo, hi], label=system, capsize=2, bottom=0)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(workloads)), workloads, rotation=30, ha="right")
    ax.set_ylabel(f"cost ratio to {study.baseline} (log)")
    ax.set_title(study.title)
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    path = out / "overhead.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def write(study: Study, out: Path, answer: str) -> Written:
    """Write report.md, report.html, results.json and the plots into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    rows = summary_rows(study)
    plots = plot(study, rows, out) if any(r.ratio for r in rows) else []
    parts = [f"# {study.title}\n", f"**{study.question}**\n", answer + "\n"]
    parts += [f"![overhead]({p.name})\n" for p in plots]
    for title, text, table in sections(study, rows):
        parts += [f"## {title}\n", (text + "\n") if text else "", markdown(table)]
    parts += [f"- {note}\n" for note in study.notes]
    md = out / "report.md"
    md.write_text("\n".join(parts))
    page = out / "report.html"
    page.write_text(_html(study, rows, answer, plots))
    raw = out / "results.json"
    study.save(raw)
    return Written(md, page, raw, plots)


CSS = (
    "body{font-family:sans-serif;max-width:75em;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:1em 0;font-size:90%}"
    "td,th{border:1px solid #bbb;padding:.25em .5em;text-align:left;vertical-align:top}"
    "th{background:#eee}.answer{background:#f4f8ff;border-left:4px solid #36c;padding:.5em 1em}"
)


def _html(study: Study, rows: list[Row], answer: str, plots: list[Path]) -> str:
    body = [f"<h1>{html.escape(study.title)}</h1>", f"<p><strong>{html.escape(study.question)}</strong></p>"]
    body.append(
        '<div class="answer">' + "".join(f"<p>{html.escape(p)}</p>" for p in answer.split("\n\n")) + "</div>"
    )
    body += [f'<img src="{html.escape(p.name)}" alt="overhead per workload and system">' for p in plots]
    for title, text, table in sections(study, rows):
        body += [f"<h2>{html.escape(title)}</h2>", f"<p>{html.escape(text)}</p>", html_table(table)]
    body += ["<ul>", *(f"<li>{html.escape(n)}</li>" for n in study.notes), "</ul>"]
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(study.title)}</title><style>{CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else math.nan
