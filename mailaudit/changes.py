"""What changed since a previous run (``--baseline PREVIOUS.json``), judged by outcome only.

Each (server, requirement, variant) of this run is classified against the baseline:

=============== ===================================================================================
new failure     failed now; did not fail in the baseline (or the baseline did not have it)
new error       could not be probed now; was probed in the baseline (or the baseline did not have it)
still failing   failed in both
still error     an error in both
fixed           failed in the baseline, passes now
changed         another change of outcome (e.g. failed -> waived, error -> passed, passed -> skipped)
new             not in the baseline, and neither failed nor an error now
gone            in the baseline, not in this run (only for servers this run audited)
unchanged       the same outcome
=============== ===================================================================================

Messages are never compared: they hold probe addresses and timings that change every run. Only
this run's servers are compared, so a shard can be compared with the merged document of the night
before. When the comparison is weaker than it looks (the baseline is incomplete, ran under another
policy or other options, or lacks a server), ``notes`` says so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailaudit.results import requirement_outcome
from mailaudit.schema import read_results

NEW_FAILURE, NEW_ERROR, STILL_FAILING, STILL_ERROR = "new failure", "new error", "still failing", "still error"
FIXED, CHANGED, NEW, GONE, UNCHANGED = "fixed", "changed", "new", "gone", "unchanged"
# Most pressing first: the order of the items, the counts and the terminal lines.
CHANGES = (NEW_FAILURE, NEW_ERROR, FIXED, CHANGED, NEW, GONE, STILL_FAILING, STILL_ERROR, UNCHANGED)
ALERTING = (NEW_FAILURE, NEW_ERROR)
NOT_NEWS = (STILL_FAILING, STILL_ERROR, UNCHANGED)
MAX_BASELINE_BYTES = 200_000_000

# The exit statuses that --fail-on new keeps (README "Exit codes"); the others are recomputed.
EXIT_CLEAN, EXIT_FINDINGS, EXIT_UNDECIDED = 0, 1, 6
KEPT_STATUSES = (2, 3, 4, 5)  # interrupted, internal error, usage error, no tests

Key = tuple[str, str, str]


@dataclass(frozen=True)
class ChangeItem:
    """One (server, requirement, variant) and how its outcome moved (``None``: not in that run)."""

    server: str
    requirement: str
    variant: str
    change: str
    outcome: str | None
    previous: str | None
    severity: str = "info"
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (an item of the document's ``changes.items``)."""
        return {"server": self.server, "requirement": self.requirement, "variant": self.variant,
                "change": self.change, "outcome": self.outcome, "previous": self.previous,
                "severity": self.severity, "message": self.message}

    def line(self) -> str:
        """``NEW FAILURE mail.example.com SMTP-VRFY-EXPN [25] (high): passed -> failed``."""
        variant = f" [{self.variant}]" if self.variant else ""
        moved = f"{self.previous or 'absent'} -> {self.outcome or 'absent'}"
        return f"{self.change.upper()} {self.server} {self.requirement}{variant} ({self.severity}): {moved}"


@dataclass(frozen=True)
class Changes:
    """Every classified verdict, the counts per change, and what weakens the comparison."""

    items: tuple[ChangeItem, ...]
    notes: tuple[str, ...]
    baseline: dict[str, Any]

    @property
    def counts(self) -> dict[str, int]:
        """How many items of each change, every change named (zeros included), most pressing first."""
        counter = Counter(item.change for item in self.items)
        return {change: counter.get(change, 0) for change in CHANGES}

    @property
    def comparable(self) -> bool:
        """True when nothing weakens the comparison (no notes)."""
        return not self.notes

    @property
    def news(self) -> tuple[ChangeItem, ...]:
        """The items that are changes (everything but still failing, still error, unchanged)."""
        return tuple(item for item in self.items if item.change not in NOT_NEWS)

    def as_dict(self, include_unchanged: bool = False) -> dict[str, Any]:
        """The document's ``changes`` field. Items are the changes plus still failing and still
        error; unchanged ones only on request (they are counted either way)."""
        items = [i.as_dict() for i in self.items if include_unchanged or i.change != UNCHANGED]
        return {"baseline": self.baseline, "comparable": self.comparable, "notes": list(self.notes),
                "counts": self.counts, "items": items}


def compare(previous: Mapping[str, Any], current: Mapping[str, Any], baseline_path: str | None = None) -> Changes:
    """Classify this run's verdicts (``current``) against the baseline document ``previous``."""
    servers = _servers_of(current)
    now = _outcomes(current["results"], servers)
    before = _outcomes(previous["results"], servers)
    items = [_classify(key, now.get(key), before.get(key)) for key in now.keys() | before.keys()]
    items.sort(key=lambda item: (CHANGES.index(item.change), item.server, item.requirement, item.variant))
    return Changes(tuple(items), tuple(_notes(previous, current, servers)), _baseline_info(previous, baseline_path))


def exit_status_on_new(changes: Changes, status: int) -> int:
    """The exit status for ``--fail-on new``: a run that was interrupted, hit an internal error,
    was misused or collected nothing keeps its status; otherwise 1 when anything newly failed,
    6 when something newly could not be probed (and nothing newly failed), else 0 — whatever
    still fails."""
    if status in KEPT_STATUSES:
        return status
    counts = changes.counts
    if counts[NEW_FAILURE]:
        return EXIT_FINDINGS
    if counts[NEW_ERROR]:
        return EXIT_UNDECIDED
    return EXIT_CLEAN


def summary_line(changes: Changes) -> str:
    """``changes since 2026-11-28T02:00:00Z: 1 new failure, 2 fixed; 150 still failing`` (zeros left out)."""
    counts = changes.counts
    news = ", ".join(f"{counts[c]} {c}" for c in CHANGES if counts[c] and c not in NOT_NEWS) or "no change"
    steady = ", ".join(f"{counts[c]} {c}" for c in NOT_NEWS if counts[c])
    since = changes.baseline.get("started") or "the baseline"
    caveat = f" (caution: {len(changes.notes)} note{'s' if len(changes.notes) > 1 else ''})" if changes.notes else ""
    return f"changes since {since}: {news}" + (f"; {steady}" if steady else "") + caveat


def change_lines(changes: Changes, limit: int = 20) -> list[str]:
    """The summary line, the notes, then one line per change (most pressing first), at most
    ``limit`` of them and a line saying how many more: what a quiet nightly run prints."""
    lines = [summary_line(changes), *(f"note: {note}" for note in changes.notes)]
    news = changes.news
    lines.extend(item.line() for item in news[:limit])
    if len(news) > limit:
        lines.append(f"... and {len(news) - limit} more changes (see the results JSON, 'changes')")
    return lines


def load_baseline(path: Path | str) -> dict[str, Any]:
    """Read a previous run's results document; a missing, unreadable, malformed or foreign file is
    a ConfigError (one line) so that the run stops before any probe."""
    return read_results(path, f"--baseline {path}", MAX_BASELINE_BYTES)


# --- internals ------------------------------------------------------------------------------------

def _servers_of(document: Mapping[str, Any]) -> set[str]:
    """The servers a run audited: its summaries, its targets and its records."""
    names = {s["server"] for s in document.get("servers", [])}
    names |= {t["server"] for t in document.get("run", {}).get("targets", [])}
    return names | {r["server"] for r in document["results"]}


def _outcomes(records: Iterable[Mapping[str, Any]], servers: set[str]) -> dict[Key, tuple[str, str, str]]:
    """(server, requirement, variant) -> (outcome, severity, message), for the given servers.
    Should a key occur twice, the worst outcome stands."""
    grouped: dict[Key, list[Mapping[str, Any]]] = {}
    for record in records:
        if record["server"] in servers:
            key = (record["server"], record["requirement"], record.get("variant", ""))
            grouped.setdefault(key, []).append(record)
    found = {}
    for key, group in grouped.items():
        outcome = requirement_outcome(r["outcome"] for r in group)
        chosen = next(r for r in group if r["outcome"] == outcome)
        found[key] = (outcome, chosen.get("severity", "info"), chosen.get("message", ""))
    return found


def _classify(key: Key, now: tuple[str, str, str] | None, before: tuple[str, str, str] | None) -> ChangeItem:
    outcome, previous = (now[0] if now else None), (before[0] if before else None)
    severity, message = (now or before or ("", "info", ""))[1:]
    return ChangeItem(*key, change=_change(outcome, previous), outcome=outcome, previous=previous,
                      severity=severity, message=message)


def _change(outcome: str | None, previous: str | None) -> str:
    if outcome is None:
        return GONE
    if outcome == "failed":
        return STILL_FAILING if previous == "failed" else NEW_FAILURE
    if outcome == "error":
        return STILL_ERROR if previous == "error" else NEW_ERROR
    if previous is None:
        return NEW
    if previous == outcome:
        return UNCHANGED
    if previous == "failed" and outcome == "passed":
        return FIXED
    return CHANGED


def _notes(previous: Mapping[str, Any], current: Mapping[str, Any], servers: set[str]) -> list[str]:
    """Everything that makes the comparison weaker than it looks."""
    notes = []
    before_run, now_run = previous["run"], current["run"]
    if not previous["complete"]:
        notes.append(f"the baseline is incomplete ({_reason(before_run)}): verdicts it lacks count as new")
    if not current["complete"]:
        notes.append("this run is incomplete: verdicts it did not reach are listed as gone")
    before_policy, now_policy = before_run["policy"], now_run["policy"]
    if before_policy.get("sha256") != now_policy.get("sha256"):
        notes.append(f"the baseline ran under another policy ({_policy(before_policy)}; now {_policy(now_policy)}): "
                     "changes may come from the policy, not the server")
    if before_run["suite_version"] != now_run["suite_version"]:
        notes.append(f"the baseline ran suite version {before_run['suite_version']} (now {now_run['suite_version']})")
    notes.extend(_option_notes(before_run, now_run))
    covered = _servers_of(previous)
    missing = sorted(servers - covered)
    if missing and not covered & servers:
        notes.append("the baseline audited none of this run's servers: every verdict is new")
    elif missing:
        notes.append(f"the baseline did not audit {_names(missing)}: its verdicts are new")
    return notes


def _option_notes(before: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """Options that change verdicts (intrusive, and every key of ``run.options``) that differ."""
    notes = []
    if "intrusive" in before and "intrusive" in now and before["intrusive"] != now["intrusive"]:
        notes.append(f"the baseline ran with intrusive probes {_on(before['intrusive'])} "
                     f"(now {_on(now['intrusive'])})")
    old, new = before.get("options") or {}, now.get("options") or {}
    differ = sorted(k for k in old.keys() | new.keys() if k != "shard" and old.get(k) != new.get(k))
    if differ:
        notes.append(f"the baseline ran with other options: {', '.join(differ[:8])}"
                     + (f" and {len(differ) - 8} more" if len(differ) > 8 else ""))
    return notes


def _baseline_info(previous: Mapping[str, Any], path: str | None) -> dict[str, Any]:
    run = previous["run"]
    return {"path": path, "started": run.get("started"), "complete": bool(previous["complete"]),
            "policy": {k: run["policy"].get(k) for k in ("name", "sha256")}}


def _reason(run: Mapping[str, Any]) -> str:
    recorded, collected = run.get("recorded"), run.get("collected")
    if isinstance(recorded, int) and isinstance(collected, int) and collected:
        return f"{recorded} of {collected} verdicts"
    return run.get("interrupted") or "interrupted"


def _policy(policy: Mapping[str, Any]) -> str:
    return f"{policy.get('name', '?')} {policy.get('sha256', '?')}"


def _on(flag: object) -> str:
    return "on" if flag else "off"


def _names(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more servers" if len(names) > limit else "")
