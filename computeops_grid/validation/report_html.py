"""Static HTML certification report: a coloured sites x probes matrix with details on click.

One self-contained file (inline CSS and a few lines of JavaScript, no network), so it can
be mailed or published as is. Every text from a site is HTML-escaped.
"""

from __future__ import annotations

import html
import json
import time

from computeops_grid.validation.history import Change
from computeops_grid.validation.plan import PROBES
from computeops_grid.validation.results import SiteResult

_CSS = """
body{font-family:sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #999;padding:.35em .6em;text-align:center}
td.probe{cursor:pointer}td.OK{background:#3c3}td.WARNING{background:#fc3}td.CRITICAL{background:#e33;color:#fff}
td.UNKNOWN{background:#c9f}td.NONE{background:#eee;color:#888}
td.v-certified{background:#3c3}td.v-degraded{background:#fc3}td.v-failed{background:#e33;color:#fff}
td.v-unreachable,td.v-pending{background:#888;color:#fff}
#details{margin-top:1em;padding:.8em;border:1px solid #999;display:none;white-space:pre-wrap;
 font-family:monospace}
"""
_JS = """
document.querySelectorAll('td.probe').forEach(function(cell){cell.addEventListener('click',function(){
 var d=DATA[cell.dataset.site][cell.dataset.probe];var box=document.getElementById('details');
 box.style.display='block';box.dataset.site=cell.dataset.site;box.dataset.probe=cell.dataset.probe;
 box.textContent=cell.dataset.site+' / '+cell.dataset.probe+': '+d.status+'\\n'+d.summary+'\\n\\n'+
  d.details.join('\\n')+(d.perf?'\\n\\nperfdata: '+d.perf:'');});});
"""


def _probe_names(results: list[SiteResult]) -> list[str]:
    seen = {p.name for r in results for p in r.probes}
    return [p for p in PROBES if p in seen] + sorted(seen - set(PROBES))


def _data(results: list[SiteResult]) -> dict[str, dict[str, dict[str, object]]]:
    data: dict[str, dict[str, dict[str, object]]] = {}
    for result in results:
        data[result.site] = {
            p.name: {
                "status": p.state.name,
                "summary": p.summary,
                "details": p.details,
                "perf": " ".join(f"{k}={v.get('value')}{v.get('uom', '')}" for k, v in p.perfdata.items()),
            }
            for p in result.probes
        }
    return data


def _row(result: SiteResult, probes: list[str]) -> str:
    esc = html.escape
    by_name = {p.name: p for p in result.probes}
    verdict = result.verdict.value
    cells = [
        f"<th>{esc(result.site)}</th>",
        f'<td class="verdict v-{verdict}" title="{esc(result.message)}">{verdict}</td>',
    ]
    for name in probes:
        probe = by_name.get(name)
        if probe is None:
            cells.append('<td class="NONE">-</td>')
            continue
        state = probe.state.name
        cells.append(
            f'<td class="probe {state}" data-site="{esc(result.site)}" data-probe="{esc(name)}" '
            f'title="{esc(probe.summary)}">{state}</td>'
        )
    return "<tr>" + "".join(cells) + "</tr>"


def render_html(campaign: str, run_id: str, results: list[SiteResult], changes: list[Change]) -> str:
    esc = html.escape
    probes = _probe_names(results)
    head = "".join(f"<th>{esc(p)}</th>" for p in probes)
    rows = "\n".join(_row(r, probes) for r in results)
    counts = {v: sum(1 for r in results if r.verdict.value == v) for v in ("certified", "degraded", "failed")}
    unreachable = [f"<li>{esc(r.site)}: {esc(r.message)}</li>" for r in results if r.message]
    changed = "".join(f"<li>{esc(str(c))}</li>" for c in changes) or "<li>no change since the last run</li>"
    data = json.dumps(_data(results)).replace("</", "<\\/")
    when = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Site certification: {esc(campaign)}</title>
<style>{_CSS}</style></head><body>
<h1>Site certification: {esc(campaign)}</h1>
<p id="summary">run {esc(run_id)}, {when}: {len(results)} sites, {counts["certified"]} certified,
{counts["degraded"]} degraded, {counts["failed"]} failed.</p>
<table id="matrix"><thead><tr><th>site</th><th>verdict</th>{head}</tr></thead>
<tbody>
{rows}
</tbody></table>
<div id="details"></div>
<h2>Sites without results</h2><ul id="unreachable">{"".join(unreachable) or "<li>none</li>"}</ul>
<h2>Changes since the last run</h2><ul id="changes">{changed}</ul>
<script>var DATA={data};{_JS}</script>
</body></html>
"""
