"""The auditor's report as plain data: per server, one entry per requirement, ranked and grouped.

``build_view`` turns a results document (schema ``mailaudit-results/1``) into what the templates
show. It decides nothing about outcomes: each requirement's outcome on a server, the server's
verdict and its counts come from ``mailaudit.results`` (the document's own summary when it has
one), so the report cannot tell another story than the JSON.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailaudit.catalog import SEVERITIES, Requirement, load_catalog
from mailaudit.report.context import ChangesView, PathScrubber, changes_view, waiver_notes
from mailaudit.report.evidence import EvidenceLinker, EvidenceView
from mailaudit.results import FAMILIES, OUTCOMES, family_of, requirement_outcome, summarize

# Worst first: the order of a requirement's variants, and of the report's sections.
OUTCOME_ORDER = OUTCOMES
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
FAMILY_ORDER = list(FAMILIES)


@dataclass(frozen=True)
class VariantView:
    """One record (one verdict) of a requirement on a server."""

    variant: str
    outcome: str
    severity: str
    message: str
    evidence: tuple[EvidenceView, ...]
    internal_error: bool = False
    basis: str = ""


@dataclass
class EntryView:
    """One requirement on one server: the catalog's words, the rolled-up verdicts, the evidence."""

    server: str
    requirement: str
    outcome: str
    severity: str
    title: str
    family: str
    why: str
    expected: str
    fix_smartermail: str
    fix_generic: str
    sources: tuple[str, ...]
    variants: list[VariantView]
    policy: list[dict[str, Any]] = field(default_factory=list)
    basis: list[str] = field(default_factory=list)
    waivers: list[dict[str, Any]] = field(default_factory=list)
    lapsed_waivers: list[dict[str, Any]] = field(default_factory=list)
    anchor: str = ""

    @property
    def family_name(self) -> str:
        """The family's readable name ("SmarterMail API")."""
        return FAMILIES.get(self.family, self.family)

    @property
    def counts(self) -> dict[str, int]:
        """How many of its verdicts have each outcome (worst first, only those present)."""
        counter = Counter(v.outcome for v in self.variants)
        return {o: counter[o] for o in OUTCOME_ORDER if counter[o]}

    @property
    def rolled_up(self) -> bool:
        """Several verdicts (ports, relay forms, versions) under one requirement."""
        return len(self.variants) > 1

    @property
    def rollup(self) -> str:
        """'85 of 85 variants failed' or '3 of 12 variants failed, 9 passed'."""
        total = len(self.variants)
        counts = list(self.counts.items())
        first_outcome, first_count = counts[0]
        text = f"{first_count} of {total} variants {first_outcome}"
        rest = ", ".join(f"{n} {o}" for o, n in counts[1:])
        return f"{text}, {rest}" if rest else text

    @property
    def lead(self) -> VariantView:
        """The verdict that decided the requirement's outcome (its first, worst verdict)."""
        return self.variants[0]

    @property
    def same_message(self) -> bool:
        """All its verdicts say the same thing."""
        return len({v.message for v in self.variants}) == 1

    @property
    def assumed_basis(self) -> bool:
        """Its API verdict rests on field-map entries marked assumed (from no published source)."""
        return any(b.startswith("assumed") for b in self.basis)

    @property
    def unique_evidence(self) -> list[EvidenceView]:
        """Its verdicts' evidence, each file once."""
        seen: dict[str, EvidenceView] = {}
        for piece in (p for v in self.variants for p in v.evidence):
            seen.setdefault(piece.anchor + piece.name, piece)
        return list(seen.values())

    @property
    def internal_error(self) -> bool:
        """Its error is a bug in the suite, not a condition of the server."""
        return any(v.internal_error for v in self.variants if v.outcome == self.outcome)


@dataclass(frozen=True)
class CauseGroup:
    """Requirements that share one cause (one error or skip message)."""

    cause: str
    outcome: str
    entries: tuple[EntryView, ...]
    internal_error: bool = False


@dataclass
class ServerView:
    """One audited server: its summary (from the results document) and its requirements by outcome."""

    server: str
    summary: dict[str, Any]
    target: dict[str, Any]
    anchor: str
    failed: list[EntryView] = field(default_factory=list)
    errors: list[CauseGroup] = field(default_factory=list)
    inconclusive: list[EntryView] = field(default_factory=list)
    waived: list[EntryView] = field(default_factory=list)
    skipped: list[CauseGroup] = field(default_factory=list)
    passed: list[EntryView] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """compliant, not compliant, undecided or not checked."""
        return str(self.summary.get("verdict", "not checked"))

    @property
    def requirement_counts(self) -> dict[str, int]:
        """Requirements by outcome, in the report's order."""
        counts = self.summary.get("requirements", {})
        return {o: int(counts.get(o, 0)) for o in OUTCOME_ORDER}

    @property
    def failed_by_severity(self) -> dict[str, int]:
        """Failed requirements by severity, most severe first (info only when present)."""
        counts = self.summary.get("failed_by_severity", {})
        return {s: int(counts.get(s, 0)) for s in SEVERITIES if s != "info" or counts.get(s)}

    @property
    def families(self) -> list[tuple[str, str, dict[str, int]]]:
        """(prefix, readable name, requirements by outcome) per family, in the suite's order."""
        fams = self.summary.get("families", {})
        ordered = sorted(fams, key=_family_rank)
        return [(f, FAMILIES.get(f, f), {o: int(fams[f].get(o, 0)) for o in OUTCOME_ORDER}) for f in ordered]

    @property
    def anchors(self) -> dict[str, str]:
        """Requirement ID -> the id of its place in the report (for citations between requirements)."""
        grouped = [e for g in (*self.errors, *self.skipped) for e in g.entries]
        return {e.requirement: e.anchor for e in (*self.failed, *self.inconclusive, *self.waived, *grouped,
                                                  *self.passed)}

    @property
    def error_count(self) -> int:
        """Requirements that could not be checked."""
        return sum(len(g.entries) for g in self.errors)

    @property
    def skipped_count(self) -> int:
        """Requirements skipped."""
        return sum(len(g.entries) for g in self.skipped)


@dataclass
class ReportView:
    """Everything the report template shows."""

    document: dict[str, Any]
    run: dict[str, Any]
    servers: list[ServerView]
    changes: ChangesView | None
    waiver_notes: dict[str, list[str]]
    self_contained: bool
    linked_files: dict[str, int]

    @property
    def complete(self) -> bool:
        """The run produced every verdict it set out to."""
        return bool(self.document.get("complete", False))


def build_view(document: dict[str, Any], evidence_base: Path, report_dir: Path,
               self_contained: bool = False) -> ReportView:
    """The report's data from one results document."""
    records = [r for r in document.get("results", []) if isinstance(r, dict)]
    run = document.get("run") or {}
    targets = {t.get("server"): t for t in run.get("targets", []) if isinstance(t, dict)}
    names = [t for t in targets] or list(dict.fromkeys(r.get("server", "") for r in records))
    summaries = {s["server"]: s for s in document.get("servers") or summarize(names, records)}
    linker = EvidenceLinker(evidence_base, report_dir, self_contained, PathScrubber(run, evidence_base))
    servers = []
    for name in list(dict.fromkeys([*summaries, *names])):
        summary = summaries.get(name) or summarize([name], records)[0]
        own = [r for r in records if r.get("server") == name]
        servers.append(_server_view(name, summary, targets.get(name, {}), own, linker))
    return ReportView(document, run, servers, changes_view(document.get("changes")),
                      waiver_notes(document.get("waivers")), self_contained, linker.linked_files)


def _server_view(name: str, summary: dict[str, Any], target: dict[str, Any], records: list[dict[str, Any]],
                 linker: EvidenceLinker) -> ServerView:
    """One server's requirements, ranked and grouped as the report shows them (evidence is assigned
    in that order, so a piece is shown inline where it is first read)."""
    view = ServerView(name, summary, target, anchor="server-" + _safe_id(name))
    by_requirement: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_requirement.setdefault(record["requirement"], []).append(record)
    outcomes = {rid: requirement_outcome(r["outcome"] for r in recs) for rid, recs in by_requirement.items()}
    ranked = sorted(by_requirement, key=lambda rid: _entry_rank(rid, outcomes[rid], by_requirement[rid]))
    entries = {rid: _entry(name, rid, outcomes[rid], by_requirement[rid], linker) for rid in ranked}
    lists = {o: [e for e in entries.values() if e.outcome == o] for o in OUTCOME_ORDER}
    view.failed, view.inconclusive, view.waived = lists["failed"], lists["inconclusive"], lists["waived"]
    view.errors = _group_by_cause(lists["error"])
    view.skipped = _group_by_cause(lists["skipped"])
    view.passed = sorted(lists["passed"], key=lambda e: _catalog_rank(e.requirement))  # by family, as read
    return view


def _entry_rank(rid: str, outcome: str, records: list[dict[str, Any]]) -> tuple[Any, ...]:
    """Outcome (worst first), then severity, family and catalog order."""
    return (OUTCOME_ORDER.index(outcome), SEVERITY_RANK.get(_severity(records, outcome), len(SEVERITIES)),
            *_catalog_rank(rid))


def _catalog_rank(rid: str) -> tuple[int, int, str]:
    """Family, then the catalog's order (SMTP-OPEN-RELAY first among SMTP), then the ID."""
    catalog_ids = list(load_catalog())
    position = catalog_ids.index(rid) if rid in catalog_ids else len(catalog_ids)
    return (_family_rank(family_of(rid)), position, rid)


def _severity(records: list[dict[str, Any]], outcome: str) -> str:
    """A requirement's severity: the highest among the records that decided its outcome."""
    deciding = [r.get("severity", "info") for r in records if r["outcome"] == outcome]
    deciding = deciding or [r.get("severity", "info") for r in records]
    return min(deciding, key=lambda s: SEVERITY_RANK.get(s, len(SEVERITIES)))


def _entry(server: str, rid: str, outcome: str, records: list[dict[str, Any]], linker: EvidenceLinker) -> EntryView:
    """One requirement on one server, its verdicts worst first."""
    first = records[0]
    catalog = load_catalog().get(rid)
    ordered = sorted(records, key=lambda r: (OUTCOME_ORDER.index(r["outcome"]) if r["outcome"] in OUTCOME_ORDER
                                             else len(OUTCOME_ORDER), _natural(r.get("variant", ""))))
    show_inline = outcome != "passed"
    variants = [_variant(r, linker, show_inline) for r in ordered]
    return EntryView(
        server=server, requirement=rid, outcome=outcome, severity=_severity(records, outcome),
        title=_text(first, "title", catalog, "title") or rid,
        family=first.get("family") or family_of(rid),
        why=_text(first, "why", catalog, "why"),
        expected=_text(first, "expected", catalog, "expected"),
        fix_smartermail=_text(first, "remediation_smartermail", catalog, "fix_smartermail"),
        fix_generic=_text(first, "remediation_generic", catalog, "fix_generic") or _legacy_remediation(first, catalog),
        sources=tuple(first.get("sources") or (catalog.sources if catalog else ())),
        variants=variants,
        policy=_unique(leaf for r in records for leaf in r.get("policy") or []),
        basis=list(dict.fromkeys(linker.scrub(str(r["basis"])) for r in records if r.get("basis"))),
        waivers=_unique(r["waiver"] for r in records if r.get("waiver")),
        lapsed_waivers=_unique(r["lapsed_waiver"] for r in records if r.get("lapsed_waiver")),
        anchor=f"{_safe_id(server)}--{_safe_id(rid)}",
    )


def _variant(record: dict[str, Any], linker: EvidenceLinker, show_inline: bool) -> VariantView:
    evidence = tuple(linker.view(piece, show_inline) for piece in record.get("evidence") or [])
    scrub = linker.scrub
    return VariantView(variant=str(record.get("variant") or ""), outcome=record["outcome"],
                       severity=str(record.get("severity") or "info"), message=scrub(str(record.get("message") or "")),
                       evidence=evidence, internal_error=bool(record.get("internal_error")),
                       basis=scrub(str(record.get("basis") or "")))


def _text(record: dict[str, Any], key: str, catalog: Requirement | None, attribute: str) -> str:
    """A catalog word from the record, else from the suite's catalog (documents of older versions)."""
    value = record.get(key)
    if value:
        return str(value)
    return str(getattr(catalog, attribute, "") or "") if catalog else ""


def _legacy_remediation(record: dict[str, Any], catalog: Requirement | None) -> str:
    """A record without the two remediation parts: its one-line remediation, if the catalog has none."""
    if record.get("remediation_smartermail") or (catalog and catalog.fix_smartermail):
        return ""
    return str(record.get("remediation") or "")


def _group_by_cause(entries: list[EntryView]) -> list[CauseGroup]:
    """Entries with the same message grouped: one cause, many requirements (largest group first)."""
    groups: dict[str, list[EntryView]] = {}
    for entry in entries:
        groups.setdefault(entry.lead.message, []).append(entry)
    ordered = sorted(groups.items(), key=lambda item: -len(item[1]))
    return [CauseGroup(cause, items[0].outcome, tuple(items), any(e.internal_error for e in items))
            for cause, items in ordered]


def _unique(items: Any) -> list[dict[str, Any]]:
    """Dicts without repeats, in first-seen order."""
    seen: dict[str, dict[str, Any]] = {}
    for item in items:
        if isinstance(item, dict):
            seen.setdefault(repr(sorted(item.items())), item)
    return list(seen.values())


def _natural(text: str) -> list[tuple[int, Any]]:
    """A sort key that orders '25' before '110' and '10465-TLSv1.0' before '10465-TLSv1.1'."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part]


def _family_rank(family: str) -> int:
    return FAMILY_ORDER.index(family) if family in FAMILY_ORDER else len(FAMILY_ORDER)


def _safe_id(text: str) -> str:
    """An HTML id part (letters, digits, dot, dash)."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-") or "x"


__all__ = ["CauseGroup", "EntryView", "ReportView", "ServerView", "VariantView", "build_view"]
