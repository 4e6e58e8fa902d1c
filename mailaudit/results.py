"""The results document: records, per-server summaries and run metadata, as plain data.

This module is the one place that turns verdict records into the story every output tells: the
results JSON, the terminal lines, pytest-html's summary and the auditor's report all read the
summary built here, so they cannot disagree. It has no pytest imports; ``mailaudit.merge`` uses it
on shards' results too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from mailaudit.catalog import SEVERITIES, Requirement

SCHEMA = "mailaudit-results/1"
OUTCOMES = ("failed", "error", "inconclusive", "waived", "skipped", "passed")
FAMILIES = {"SMTP": "SMTP", "TLS": "TLS", "DNS": "DNS", "API": "SmarterMail API", "XCHK": "cross-checks"}
COMPLIANT, NOT_COMPLIANT, UNDECIDED, NOT_CHECKED = "compliant", "not compliant", "undecided", "not checked"

Record = dict[str, Any]


def family_of(requirement: str) -> str:
    """The family prefix of a requirement ID ("SMTP-OPEN-RELAY" -> "SMTP")."""
    return requirement.split("-", 1)[0]


def catalog_fields(requirement: Requirement) -> dict[str, Any]:
    """What a record carries from the catalog, so readers of the JSON need not read the catalog:
    the title, family, what was expected, why it matters, sources, and the remediation both as one
    line (``remediation``) and in its two parts (SmarterMail's web interface, the generic fix)."""
    return {
        "title": requirement.title,
        "family": family_of(requirement.id),
        "expected": requirement.expected,
        "why": requirement.why,
        "sources": list(requirement.sources),
        "remediation": requirement.remediation,
        "remediation_smartermail": requirement.fix_smartermail,
        "remediation_generic": requirement.fix_generic,
    }


def requirement_outcome(outcomes: Iterable[str]) -> str:
    """One requirement's outcome on one server from its records' outcomes: any failure fails it,
    then error, inconclusive, waived; all skipped is skipped; otherwise it passed."""
    seen = set(outcomes)
    for outcome in ("failed", "error", "inconclusive", "waived"):
        if outcome in seen:
            return outcome
    if seen <= {"skipped"}:
        return "skipped"
    return "passed"


def server_verdict(requirement_outcomes: Mapping[str, str]) -> str:
    """Compliant, not compliant (a requirement failed), undecided (none failed but some could not be
    decided), or not checked (nothing was judged)."""
    values = set(requirement_outcomes.values())
    if "failed" in values:
        return NOT_COMPLIANT
    if values & {"error", "inconclusive"}:
        return UNDECIDED
    if not values - {"skipped"}:
        return NOT_CHECKED
    return COMPLIANT


def summarize_server(server: str, records: list[Record]) -> dict[str, Any]:
    """The per-server summary: verdict, counts per requirement and per record, failures by
    severity (ranked, not alphabetical) and per family."""
    by_requirement: dict[str, list[Record]] = {}
    for record in records:
        by_requirement.setdefault(record["requirement"], []).append(record)
    outcomes = {rid: requirement_outcome(r["outcome"] for r in recs) for rid, recs in by_requirement.items()}
    severity_of = {rid: _requirement_severity(recs) for rid, recs in by_requirement.items()}
    failed_by_severity = Counter(severity_of[rid] for rid, o in outcomes.items() if o == "failed")
    families: dict[str, Counter[str]] = {}
    for rid, outcome in outcomes.items():
        families.setdefault(family_of(rid), Counter())[outcome] += 1
    return {
        "server": server,
        "verdict": server_verdict(outcomes),
        "requirements": _counts(outcomes.values()) | {"total": len(outcomes)},
        "records": _counts(r["outcome"] for r in records) | {"total": len(records)},
        "failed_by_severity": {s: failed_by_severity.get(s, 0) for s in SEVERITIES},
        "families": {f: _counts(c.elements()) for f, c in sorted(families.items(), key=_family_rank)},
        "requirement_outcomes": dict(sorted(outcomes.items())),
        "internal_errors": sum(1 for r in records if r.get("internal_error")),
    }


def _requirement_severity(records: list[Record]) -> str:
    """The highest severity among a requirement's failed records (a verdict may lower its own)."""
    failed = [r["severity"] for r in records if r["outcome"] == "failed"] or [r["severity"] for r in records]
    ranked = [s for s in SEVERITIES if s in failed]
    return ranked[0] if ranked else "info"


def _counts(outcomes: Iterable[str]) -> dict[str, int]:
    counter = Counter(outcomes)
    return {o: counter.get(o, 0) for o in OUTCOMES}


def _family_rank(item: tuple[str, Any]) -> int:
    order = list(FAMILIES)
    return order.index(item[0]) if item[0] in order else len(order)


def summarize(servers: Iterable[str], records: Iterable[Record]) -> list[dict[str, Any]]:
    """One summary per server, in the given order (a server without records is 'not checked')."""
    records = list(records)
    return [summarize_server(s, [r for r in records if r["server"] == s]) for s in servers]


def build_document(run: dict[str, Any], records: list[Record], complete: bool,
                   servers: Iterable[str]) -> dict[str, Any]:
    """The whole results document (schema ``mailaudit-results/1``)."""
    ordered = sorted(records, key=record_order)
    return {
        "schema": SCHEMA,
        "complete": complete,
        "run": run,
        "servers": summarize(servers, ordered),
        "results": ordered,
    }


def record_order(record: Record) -> tuple[Any, ...]:
    """A stable order: server, then family, requirement, variant."""
    return (record["server"], _family_rank((family_of(record["requirement"]), None)),
            record["requirement"], record.get("variant", ""))


def overall_verdict(summaries: Iterable[Mapping[str, Any]]) -> str:
    """The run's verdict: the worst server verdict."""
    verdicts = {s["verdict"] for s in summaries}
    for verdict in (NOT_COMPLIANT, UNDECIDED, COMPLIANT):
        if verdict in verdicts:
            return verdict
    return NOT_CHECKED


def summary_line(summary: Mapping[str, Any]) -> str:
    """One line for a server: verdict, requirements by outcome (failures by severity), verdict rows."""
    reqs, records = summary["requirements"], summary["records"]
    line = f"{summary['server']}: {summary['verdict'].upper()}"
    parts = []
    if reqs["failed"]:
        by_severity = ", ".join(f"{n} {s}" for s, n in summary["failed_by_severity"].items() if n)
        parts.append(f"{reqs['failed']} of {reqs['total']} requirements failed ({by_severity})")
    others = [f"{reqs[o]} {o}" for o in ("error", "inconclusive", "waived", "passed", "skipped") if reqs[o]]
    if others:
        parts.append(", ".join(others) + ("" if reqs["failed"] else f" of {reqs['total']} requirements"))
    rows = ", ".join(f"{records[o]} {o}" for o in OUTCOMES if records[o])
    parts.append(f"verdicts: {rows or 'none'}")
    return line + " — " + "; ".join(parts)
