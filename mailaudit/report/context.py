"""The document around the verdicts, as the report shows it: the changes since a baseline run
(``mailaudit.changes``), the waiver review, and the auditing machine's paths cut to file names."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

PATH_OPTIONS = ("ca_file", "waivers", "api_fieldmap", "inventory", "baseline")  # run.options that name files


class PathScrubber:
    """Shows files of the auditing machine by name only: the absolute paths a run was given (policy,
    CA file, waivers, field map) and the results folder are cut down to their last part wherever a
    message or a piece of evidence repeats them."""

    def __init__(self, run: dict[str, Any], evidence_base: Path) -> None:
        options = run.get("options") or {}
        given = [(run.get("policy") or {}).get("path"), *(options.get(k) for k in PATH_OPTIONS)]
        paths = {str(p) for p in given if isinstance(p, str) and p.startswith("/")}
        self.replacements = sorted(((p, PurePath(p).name) for p in paths), key=lambda r: -len(r[0]))
        self.replacements.append((str(evidence_base.resolve()) + "/", ""))

    def __call__(self, text: str) -> str:
        """The text with every known machine path replaced by its file name."""
        for path, name in self.replacements:
            if path in text:
                text = text.replace(path, name)
        return text


# mailaudit.changes: the order of its change kinds; "still ..." and "unchanged" are not news.
CHANGE_ORDER = ("new failure", "new error", "fixed", "changed", "new", "gone", "still failing", "still error",
                "unchanged")
STEADY = ("still failing", "still error", "unchanged")


@dataclass
class ChangesView:
    """What changed since a baseline run: the news (new failures first), every count, the caveats."""

    news: list[dict[str, Any]]
    counts: dict[str, int]
    notes: list[str]
    baseline: dict[str, Any]

    @property
    def ordered_counts(self) -> list[tuple[str, int]]:
        """(change, count) in the suite's order, zeros left out."""
        known = [(c, self.counts[c]) for c in CHANGE_ORDER if self.counts.get(c)]
        return known + [(c, n) for c, n in self.counts.items() if c not in CHANGE_ORDER]


def changes_view(changes: Any) -> ChangesView | None:
    """The document's changes since a baseline (``mailaudit.changes``: a mapping with ``items``,
    ``counts``, ``notes`` and ``baseline``; a bare list of items is read too)."""
    if changes is None:
        return None
    data = changes if isinstance(changes, dict) else {"items": changes}
    items = [c for c in data.get("items") or [] if isinstance(c, dict)]
    counts = data.get("counts")
    if not isinstance(counts, dict):
        counts = dict(Counter(str(c.get("change")) for c in items))
    news = [c for c in items if c.get("change") not in STEADY]
    news.sort(key=lambda c: (_change_rank(c.get("change")), str(c.get("server", "")), str(c.get("requirement", "")),
                             str(c.get("variant", ""))))
    baseline = data.get("baseline") if isinstance(data.get("baseline"), dict) else {}
    notes = [str(n) for n in data.get("notes") or []]
    return ChangesView(news=news, counts={str(k): int(v) for k, v in counts.items() if isinstance(v, int) and v},
                       notes=notes, baseline=baseline)


def _change_rank(change: Any) -> int:
    return CHANGE_ORDER.index(change) if change in CHANGE_ORDER else len(CHANGE_ORDER)


def waiver_notes(notes: Any) -> dict[str, list[str]]:
    """The document's waiver review: expired waivers and waivers that matched nothing."""
    if not isinstance(notes, dict):
        return {}
    out = {}
    for kind in ("expired", "unused"):
        messages = [n.get("message", "") if isinstance(n, dict) else str(n) for n in notes.get(kind) or []]
        if messages:
            out[kind] = messages
    return out
