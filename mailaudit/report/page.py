"""Rendering the report view to HTML with Jinja2 (autoescape always on) and the small filters the
templates use: source citations as links, dates, durations, sizes, file names without folders."""

from __future__ import annotations

import datetime as dt
import re
from functools import cache
from pathlib import Path, PurePath
from typing import Any

from jinja2 import ChainableUndefined, Environment, FileSystemLoader
from markupsafe import Markup, escape

from mailaudit.report.model import ReportView

HERE = Path(__file__).parent
OUTCOME_LABELS = {"failed": "failed", "error": "error", "inconclusive": "inconclusive", "waived": "waived",
                  "skipped": "skipped", "passed": "passed"}
VERDICT_LABELS = {"compliant": "Compliant", "not compliant": "Not compliant", "undecided": "Undecided",
                  "not checked": "Not checked"}
_CITATION = re.compile(r"\b(RFC) ?(\d{3,5})(?: ?§ ?(\d+(?:\.\d+)*))?|\b(CVE-\d{4}-\d{4,7})\b")


@cache
def environment() -> Environment:
    """The Jinja2 environment: templates from this package, autoescape for every template."""
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, undefined=ChainableUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(cite=cite, when=when, duration=duration, size=size, basename=basename, slug=slug)
    env.globals.update(OUTCOME_LABELS=OUTCOME_LABELS, VERDICT_LABELS=VERDICT_LABELS)
    return env


def render(view: ReportView) -> str:
    """The whole report as one HTML document (stylesheet and script inline)."""
    css = (HERE / "static" / "report.css").read_text(encoding="utf-8")
    script = (HERE / "static" / "report.js").read_text(encoding="utf-8")
    return environment().get_template("report.html.j2").render(view=view, css=Markup(css), script=Markup(script))


def cite(source: str, anchors: dict[str, str] | None = None) -> Markup:
    """A source citation with RFCs and CVEs linked to their public pages; requirement IDs that this
    report shows link to their entry. Everything else is escaped text."""
    anchors = anchors or {}
    if source in anchors:
        return Markup('<a href="#{}">{}</a>').format(anchors[source], source)
    out, last = [], 0
    for match in _CITATION.finditer(source):
        out.append(escape(source[last:match.start()]))
        out.append(Markup('<a href="{}" rel="noreferrer">{}</a>').format(_citation_url(match), match.group(0)))
        last = match.end()
    out.append(escape(source[last:]))
    return Markup("").join(out)


def _citation_url(match: re.Match[str]) -> str:
    if match.group(4):
        return f"https://www.cve.org/CVERecord?id={match.group(4)}"
    url = f"https://www.rfc-editor.org/rfc/rfc{match.group(2)}"
    return url + (f"#section-{match.group(3)}" if match.group(3) else "")


def when(value: Any) -> str:
    """An ISO time stamp as '2026-11-29 19:09:51 UTC' (anything else as given)."""
    if not value:
        return "—"
    try:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: Any) -> str:
    """Seconds as '17 s', '3 min 05 s' or '1 h 02 min'."""
    try:
        total = round(float(seconds))
    except (TypeError, ValueError):
        return "—"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def size(chars: Any) -> str:
    """A character count as '459 characters', '59 KB', '1.2 MB'."""
    n = int(chars or 0)
    if n < 10_000:
        return f"{n:,} characters"
    if n < 1_000_000:
        return f"{n / 1000:.0f} KB"
    return f"{n / 1_000_000:.1f} MB"


def basename(path: Any) -> str:
    """Only a file's name: the report shows no folders of the auditing machine."""
    return PurePath(str(path)).name if path else ""


def slug(text: Any) -> str:
    """An HTML id part."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", str(text)).strip("-") or "x"
