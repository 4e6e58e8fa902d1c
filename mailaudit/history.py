"""Run history (``--history DIR``): each run's results kept by start time, and a static trend page.

``DIR/runs/<start time>.json`` holds each run's results document, slimmed: records keep what a
baseline needs (requirement, server, variant, outcome, severity, message...) but not the evidence
or the catalog's texts, so a copy is ~150 KB per server and run. Any of them can be given to
``--baseline``. At most ``keep`` run files are kept (the oldest go first); nothing else in ``DIR``
is touched. ``DIR/index.html`` shows, per server, the requirements failed by severity (and those
that could not be probed) over the kept runs as an inline SVG chart and a table: no JavaScript,
every text escaped.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from mailaudit.catalog import SEVERITIES

DEFAULT_KEEP = 60
MAX_KEEP = 10_000
RUNS = "runs"
INDEX = "index.html"
RUN_FILE = re.compile(r"^(\d{8}T\d{6}Z)(?:-(\d{1,4}))?\.json$")
SLIM_DROP = ("evidence", "remediation", "sources", "title")  # evidence files are not kept; catalog texts are
CHART_SEVERITIES = ("critical", "high", "medium", "low")
COLOURS = {"critical": "#7b1020", "high": "#d7301f", "medium": "#f08c00", "low": "#e8c80c", "error": "#4b5563"}
TABLE_ROWS = 30


@dataclass(frozen=True)
class ServerPoint:
    """One server in one run: its verdict and its counts of requirements."""

    verdict: str
    failed_by_severity: dict[str, int]
    failed: int
    errors: int
    inconclusive: int
    total: int


@dataclass(frozen=True)
class RunPoint:
    """One kept run: its file, start time, whether it finished, and each server's counts."""

    file: str  # relative to the history folder, "/"-separated
    started: str
    complete: bool
    servers: dict[str, ServerPoint]


@dataclass(frozen=True)
class HistoryUpdate:
    """What :func:`update_history` did: the run file written, the page, the files removed."""

    run_file: Path
    index: Path
    removed: tuple[Path, ...]
    unreadable: tuple[str, ...]


def update_history(document: Mapping[str, Any], directory: Path | str, keep: int = DEFAULT_KEEP,
                   now: dt.datetime | None = None) -> HistoryUpdate:
    """Keep this run's results in ``directory``, drop runs beyond ``keep``, rewrite the trend page."""
    directory = Path(directory)
    run_file = add_run(document, directory)
    removed = prune(directory, keep)
    runs, unreadable = load_runs(directory)
    index = directory / INDEX
    _write_atomic(index, render_trend_page(runs, unreadable, generated=now))
    return HistoryUpdate(run_file, index, removed, unreadable)


def add_run(document: Mapping[str, Any], directory: Path | str) -> Path:
    """Write the slimmed document as ``runs/<start time>.json`` (never over an earlier file)."""
    folder = Path(directory) / RUNS
    folder.mkdir(parents=True, exist_ok=True)
    stem = run_stem(document)
    path = folder / f"{stem}.json"
    counter = 1
    while path.exists():
        counter += 1
        path = folder / f"{stem}-{counter}.json"
    _write_atomic(path, json.dumps(slim(document), ensure_ascii=False, separators=(",", ":")) + "\n")
    return path


def run_stem(document: Mapping[str, Any]) -> str:
    """``20261129T190951Z`` from the run's start time (the current time if it has none)."""
    started = _parse_time((document.get("run") or {}).get("started"))
    return (started or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")


def slim(document: Mapping[str, Any]) -> dict[str, Any]:
    """The document without evidence and catalog texts in its records (still a valid document)."""
    copy = dict(document)
    copy["results"] = [{k: v for k, v in record.items() if k not in SLIM_DROP} for record in document["results"]]
    return copy


def run_files(directory: Path | str) -> list[Path]:
    """The kept run files, oldest first."""
    folder = Path(directory) / RUNS
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if RUN_FILE.match(p.name) and p.is_file()]
    return sorted(found, key=_file_order)


def prune(directory: Path | str, keep: int) -> tuple[Path, ...]:
    """Remove the oldest run files beyond ``keep``; return what was removed."""
    if not 1 <= keep <= MAX_KEEP:
        raise ValueError(f"keep must be between 1 and {MAX_KEEP} runs, not {keep}")
    files = run_files(directory)
    doomed = tuple(files[:-keep]) if len(files) > keep else ()
    for path in doomed:
        path.unlink()
    return doomed


def latest_run(directory: Path | str, complete_only: bool = True) -> Path | None:
    """The newest kept run file (the newest complete one, unless ``complete_only`` is false): a
    ready ``--baseline``. None when there is none."""
    for path in reversed(run_files(directory)):
        if not complete_only:
            return path
        point = _read_point(path, Path(directory))
        if point is not None and point.complete:
            return path
    return None


def load_runs(directory: Path | str) -> tuple[list[RunPoint], tuple[str, ...]]:
    """Every kept run (oldest first) and the names of files that could not be read as results."""
    directory = Path(directory)
    runs, unreadable = [], []
    for path in run_files(directory):
        point = _read_point(path, directory)
        if point is None:
            unreadable.append(path.name)
        else:
            runs.append(point)
    return runs, tuple(unreadable)


# --- reading a run file -------------------------------------------------------------------------

def _read_point(path: Path, directory: Path) -> RunPoint | None:
    """A run file's trend data, or None when it is not a readable results document."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return point_of(document, path.relative_to(directory).as_posix())


def point_of(document: Any, file: str) -> RunPoint | None:
    """A results document's trend data; None when its shape is not a results document's."""
    if not isinstance(document, dict) or not isinstance(document.get("run"), dict):
        return None
    summaries = document.get("servers")
    started = document["run"].get("started")
    if not isinstance(summaries, list) or not isinstance(started, str):
        return None
    servers = {}
    for summary in summaries:
        point = _server_point(summary)
        if point is None:
            return None
        servers[summary["server"]] = point
    return RunPoint(file, started, document.get("complete") is True, servers)


def _server_point(summary: Any) -> ServerPoint | None:
    if not isinstance(summary, dict) or not isinstance(summary.get("server"), str):
        return None
    by_severity, requirements = summary.get("failed_by_severity"), summary.get("requirements")
    if not isinstance(by_severity, dict) or not isinstance(requirements, dict):
        return None
    counts = {s: _count(by_severity.get(s)) for s in SEVERITIES}
    return ServerPoint(verdict=str(summary.get("verdict", "")), failed_by_severity=counts,
                       failed=_count(requirements.get("failed")), errors=_count(requirements.get("error")),
                       inconclusive=_count(requirements.get("inconclusive")),
                       total=_count(requirements.get("total")))


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


# --- the page -----------------------------------------------------------------------------------

def render_trend_page(runs: Sequence[RunPoint], unreadable: Iterable[str] = (),
                      generated: dt.datetime | None = None) -> str:
    """The trend page: per server an SVG chart of requirements failed by severity (bars) and
    requirements that could not be probed (line) over the runs, then a table of recent runs."""
    generated = generated or dt.datetime.now(dt.UTC)
    servers = sorted({name for run in runs for name in run.servers}, key=str.casefold)
    parts = [_HEAD, "<h1>mailaudit: history</h1>",
             f"<p class=meta>{len(runs)} run{'s' if len(runs) != 1 else ''} kept"
             f"{_span(runs)}; page written {escape(_show_time(generated))}. "
             "Bars: requirements failed, by severity; line: requirements that could not be probed (error). "
             "Faded bars: runs that did not finish.</p>"]
    unreadable = list(unreadable)
    if unreadable:
        parts.append(f"<p class=warn>Not readable as results, left out: {escape(', '.join(unreadable))}</p>")
    if not servers:
        parts.append("<p>No run recorded yet.</p>")
    else:
        parts.append(_server_index(servers, runs))
    for index, server in enumerate(servers):
        parts.append(_server_section(index, server, [(run, run.servers[server]) for run in runs
                                                     if server in run.servers]))
    parts.append("</body></html>\n")
    return "\n".join(parts)


_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mailaudit: history</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:1.5rem auto;
max-width:980px;padding:0 1rem;color:#111;line-height:1.4}
h1{font-size:1.5rem;margin:0 0 .3rem}h2{font-size:1.2rem;margin:2rem 0 .3rem;overflow-wrap:anywhere}
.meta{color:#444;margin:.2rem 0}.warn{color:#8a1c00}
svg{width:100%;height:auto;display:block;margin:.5rem 0}
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{border-bottom:1px solid #ddd;padding:.25rem .4rem;
text-align:right}th:first-child,td:first-child,td.v,th.v{text-align:left}
.legend span{display:inline-block;margin-right:1rem;white-space:nowrap}
.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:-.1rem}
.v-compliant{color:#0a6b2d}.v-not-compliant{color:#b00020;font-weight:600}.v-undecided{color:#7a5200}
ul.servers{columns:2;padding-left:1.2rem}
@media print{h2{break-before:auto}section{break-inside:avoid}}
</style></head><body>"""


def _server_index(servers: list[str], runs: Sequence[RunPoint]) -> str:
    items = []
    for index, server in enumerate(servers):
        last = next(run.servers[server] for run in reversed(runs) if server in run.servers)
        items.append(f'<li><a href="#s{index}">{escape(server)}</a>: {_verdict(last.verdict)}</li>')
    return f"<ul class=servers>{''.join(items)}</ul>"


def _server_section(index: int, server: str, points: list[tuple[RunPoint, ServerPoint]]) -> str:
    latest_run, latest = points[-1]
    summary = (f"latest run {escape(_show_time(_parse_time(latest_run.started)))}: {_verdict(latest.verdict)}, "
               f"{latest.failed} of {latest.total} requirements failed, {latest.errors} could not be probed")
    legend = "".join(f'<span><i style="background:{COLOURS[s]}"></i>{s}</span>' for s in CHART_SEVERITIES)
    legend += f'<span><i style="background:{COLOURS["error"]};height:.2rem"></i>error</span>'
    return (f'<section id="s{index}"><h2>{escape(server)}</h2><p class=meta>{summary}</p>'
            f"<div class=legend>{legend}</div>{chart_svg(server, points)}{_table(points)}</section>")


def chart_svg(server: str, points: Sequence[tuple[RunPoint, ServerPoint]]) -> str:
    """Stacked bars (requirements failed per severity) and a line (requirements in error) per run."""
    width, height, left, right, top, bottom = 900, 260, 44, 12, 12, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([1, *(max(sum(p.failed_by_severity[s] for s in CHART_SEVERITIES), p.errors) for _, p in points)])
    step = _nice_step(peak)
    top_value = step * -(-peak // step)
    slot = plot_w / len(points)
    bar = max(min(slot * 0.7, 48.0), 1.0)

    def y(value: float) -> float:
        return top + plot_h - plot_h * value / top_value

    out = [f'<svg viewBox="0 0 {width} {height}" role="img" xmlns="http://www.w3.org/2000/svg" '
           f'aria-label="requirements failed by severity over {len(points)} runs for {escape(server)}">',
           f"<title>{escape(server)}: requirements failed by severity per run</title>"]
    for tick in range(0, top_value + 1, step):
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                   f'stroke="#e5e7eb"/><text x="{left - 6}" y="{y(tick) + 4:.1f}" font-size="12" '
                   f'text-anchor="end" fill="#374151">{tick}</text>')
    labels = _label_every(len(points))
    line: list[str] = []
    for i, (run, point) in enumerate(points):
        x = left + slot * i + (slot - bar) / 2
        out.append(f'<g opacity="{1 if run.complete else 0.45}"><title>{escape(_bar_title(run, point))}</title>')
        base = 0
        for severity in reversed(CHART_SEVERITIES):  # critical on top
            count = point.failed_by_severity[severity]
            if count:
                out.append(f'<rect x="{x:.1f}" y="{y(base + count):.1f}" width="{bar:.1f}" '
                           f'height="{y(base) - y(base + count):.1f}" fill="{COLOURS[severity]}"/>')
                base += count
        out.append("</g>")
        line.append(f"{x + bar / 2:.1f},{y(point.errors):.1f}")
        if (len(points) - 1 - i) % labels == 0:  # evenly spaced, counted back from the latest run
            out.append(f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 16}" font-size="12" '
                       f'text-anchor="middle" fill="#374151">{escape(_short_date(run.started))}</text>')
    if len(line) > 1:
        out.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="{COLOURS["error"]}" '
                   'stroke-width="2" stroke-dasharray="6 3"/>')
    out.extend(f'<circle cx="{xy.split(",")[0]}" cy="{xy.split(",")[1]}" r="3" fill="{COLOURS["error"]}"/>'
               for xy in line)
    out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#6b7280"/>')
    out.append(f'<text x="{left}" y="{height - 6}" font-size="12" fill="#374151">run start (UTC)</text></svg>')
    return "".join(out)


def _table(points: Sequence[tuple[RunPoint, ServerPoint]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("run (UTC)", "verdict", *CHART_SEVERITIES, "error", "inconclusive",
                                              "finished", "results"))
    rows = []
    for run, point in list(reversed(points))[:TABLE_ROWS]:
        cells = [escape(_show_time(_parse_time(run.started))), _verdict(point.verdict),
                 *(str(point.failed_by_severity[s]) for s in CHART_SEVERITIES), str(point.errors),
                 str(point.inconclusive), "yes" if run.complete else "<strong>no</strong>",
                 f'<a href="{escape(run.file, quote=True)}">{escape(run.file.rsplit("/", 1)[-1])}</a>']
        rows.append("<tr>" + "".join(f"<td{' class=v' if i == 1 else ''}>{c}</td>" for i, c in enumerate(cells))
                    + "</tr>")
    more = f"<p class=meta>Latest {TABLE_ROWS} of {len(points)} runs shown.</p>" if len(points) > TABLE_ROWS else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"


def _bar_title(run: RunPoint, point: ServerPoint) -> str:
    failed = ", ".join(f"{point.failed_by_severity[s]} {s}" for s in CHART_SEVERITIES)
    state = "" if run.complete else " (did not finish)"
    return (f"{_show_time(_parse_time(run.started))}{state}: {point.verdict}; failed: {failed}; "
            f"{point.errors} error, {point.inconclusive} inconclusive")


def _verdict(verdict: str) -> str:
    css = re.sub(r"[^a-z]+", "-", verdict.lower()).strip("-")
    return f'<span class="v-{css}">{escape(verdict or "unknown")}</span>'


def _nice_step(peak: int) -> int:
    """A tick step of 1, 2, 5, 10, 20, 50... giving at most six gridlines above zero."""
    step, factors = 1, (2.0, 2.5, 2.0)
    index = 0
    while peak / step > 6:
        step = int(step * factors[index % 3])
        index += 1
    return step


def _label_every(count: int, most: int = 10) -> int:
    return max(1, -(-count // most))


def _span(runs: Sequence[RunPoint]) -> str:
    if not runs:
        return ""
    first, last = _parse_time(runs[0].started), _parse_time(runs[-1].started)
    return f", {escape(_show_time(first))} to {escape(_show_time(last))}"


def _parse_time(text: object) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _show_time(moment: dt.datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "unknown time"


def _short_date(text: str) -> str:
    moment = _parse_time(text)
    return moment.strftime("%m-%d") if moment else "?"


def _file_order(path: Path) -> tuple[str, int]:
    """Start time, then the counter of runs that started in the same second."""
    match = RUN_FILE.match(path.name)
    return (match.group(1), int(match.group(2) or 1)) if match else ("", 0)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
