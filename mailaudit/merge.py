"""Merging shards' results into one document (and one auditor's report).

``python -m mailaudit.merge shard*.json -o merged.json`` reads the results JSON of each shard (each
with its ``<name>-evidence/`` folder beside it), refuses shards that do not belong together (another
schema, policy, suite version or verdict-changing options; a server in two shards), copies every
evidence file into ``merged-evidence/`` and rewrites the records' paths, recomputes every summary
with ``mailaudit.results``, writes ``merged.json`` and, when ``mailaudit.report`` is there, the
auditor's report ``merged-audit.html``. With ``--baseline`` (or ``--history DIR`` alone: the newest
complete run kept there) it adds what changed; with ``--history`` it also keeps the merged run and
updates the trend page. Exit codes are the suite's (``--fail-on new``: only new failures or errors).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from mailaudit import history
from mailaudit.changes import CHANGES, Changes, change_lines, compare, exit_status_on_new, load_baseline
from mailaudit.errors import ConfigError
from mailaudit.evidence import FILE_NAME
from mailaudit.report import write_audit_report
from mailaudit.results import build_document, summary_line
from mailaudit.schema import read_results
from mailaudit.shard import parse_shard

EXIT_COMPLIANT, EXIT_FINDINGS, EXIT_INTERRUPTED, EXIT_INTERNAL, EXIT_USAGE, EXIT_UNDECIDED = 0, 1, 2, 3, 4, 6
MAX_SHARD_BYTES = 500_000_000
PER_SHARD_OPTIONS = ("shard",)  # run.options keys that may differ between shards of one run
_EVIDENCE_PATH = re.compile(r"^[A-Za-z0-9._-]{1,200}/[0-9a-f]{20}\.txt$", re.ASCII)


@dataclass(frozen=True)
class Shard:
    """One shard's results document and where it was read from."""

    path: Path
    document: dict[str, Any]

    @property
    def servers(self) -> list[str]:
        """The servers this shard audited (its summaries, in order)."""
        return [s["server"] for s in self.document["servers"]]


def read_shard(path: Path | str) -> Shard:
    """Read and validate one shard's results JSON; a ConfigError (one line) when it is not one."""
    path = Path(path)
    document = read_results(path, str(path), MAX_SHARD_BYTES)
    return Shard(path, document)


def check_compatible(shards: Sequence[Shard]) -> None:
    """Refuse (ConfigError, one line) shards that are not parts of one run: another policy (by
    content hash), suite version, intrusive setting or options; a server in two shards; shards of
    two splits or two shards in one place (when they name their place K/N)."""
    if not shards:
        raise ConfigError("no shard given")
    first = shards[0]
    reference = first.document["run"]
    owner: dict[str, Path] = {}
    for shard in shards:
        run = shard.document["run"]
        for what, mine, theirs in (
            ("policy", run["policy"].get("sha256"), reference["policy"].get("sha256")),
            ("suite version", run["suite_version"], reference["suite_version"]),
            ("intrusive setting", run.get("intrusive"), reference.get("intrusive")),
        ):
            if mine != theirs:
                raise ConfigError(f"{shard.path}: {what} {mine} differs from {first.path}'s ({theirs}); "
                                  "merge shards of one run only")
        differ = _differing_options(run.get("options") or {}, reference.get("options") or {})
        if differ:
            raise ConfigError(f"{shard.path}: option {differ} differs from {first.path}'s; "
                              "merge shards of one run only")
        _position(shard)  # a malformed "K/N" is refused here
        for server in shard.servers:
            key = server.casefold()
            if key in owner:
                raise ConfigError(f"{shard.path}: server {server} is also in {owner[key]}; each server "
                                  "belongs to exactly one shard")
            owner[key] = shard.path
    missing_shards(shards)  # two splits, or one place twice, are refused here


def merge_documents(shards: Sequence[Shard], outputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One results document from compatible shards (records as they are: see :func:`rehome_evidence`).
    When the shards say which K of N they are, a missing shard makes the merge incomplete."""
    check_compatible(shards)
    documents = [shard.document for shard in shards]
    servers = [server for shard in shards for server in shard.servers]
    records = [record for document in documents for record in document["results"]]
    missing = missing_shards(shards)
    complete = all(document["complete"] for document in documents) and not missing
    run = _merged_run(shards, complete, records, outputs, missing)
    document = build_document(run, records, complete, servers)
    document["shards"] = [_shard_entry(shard) for shard in shards]
    waivers = _merged_waivers(documents)
    if waivers is not None:
        document["waivers"] = waivers
    changes = _merged_changes(documents)
    if changes is not None:
        document["changes"] = changes
    return document


def missing_shards(shards: Sequence[Shard]) -> list[str]:
    """The shards (``"3/4"``) of the split that were not given, when every shard names its place
    (``run.shard`` or ``run.options.shard``, ``"K/N"``); two splits or one shard twice are refused."""
    positions = [_position(shard) for shard in shards]
    if not positions or any(p is None for p in positions):
        return []
    totals = {n for _, n in positions}
    if len(totals) > 1:
        raise ConfigError(f"shards of different splits ({', '.join(f'{k}/{n}' for k, n in positions)}); "
                          "merge shards of one run only")
    total = totals.pop()
    seen: dict[int, Path] = {}
    for shard, (k, _) in zip(shards, positions, strict=True):
        if k in seen:
            raise ConfigError(f"{shard.path}: shard {k}/{total} is also {seen[k]}")
        seen[k] = shard.path
    return [f"{k}/{total}" for k in range(1, total + 1) if k not in seen]


def _position(shard: Shard) -> tuple[int, int] | None:
    run = shard.document["run"]
    text = run.get("shard") or (run.get("options") or {}).get("shard")
    if text is None:
        return None
    try:
        return parse_shard(str(text))
    except ConfigError as exc:
        raise ConfigError(f"{shard.path}: {exc}") from None


def exit_status(document: Mapping[str, Any]) -> int:
    """The suite's exit status for a (merged) document: 3 internal error, 2 a shard was
    interrupted or is missing, 1 findings, 6 could not decide, 0 compliant."""
    statuses = [entry.get("exit_status") for entry in document.get("shards", [])]
    statuses = statuses or [document["run"].get("exit_status")]
    records = document["results"]
    outcomes = {record["outcome"] for record in records}
    if EXIT_INTERNAL in statuses or any(record.get("internal_error") for record in records):
        return EXIT_INTERNAL
    if EXIT_INTERRUPTED in statuses or document["run"].get("missing_shards"):
        return EXIT_INTERRUPTED
    if "failed" in outcomes:
        return EXIT_FINDINGS
    if outcomes & {"error", "inconclusive"}:
        return EXIT_UNDECIDED
    return EXIT_COMPLIANT


# --- evidence -----------------------------------------------------------------------------------

def evidence_dir_for(output: Path) -> Path:
    """Where a results file's evidence goes: ``<stem>-evidence`` beside it (as the suite does)."""
    return output.with_name(output.stem + "-evidence")


def evidence_sources(shard: Shard) -> dict[str, Path]:
    """Every evidence file the shard's records name (path as written -> the file), checked: a path
    that is not ``<folder>/<content hash>.txt``, leaves the shard's folder or names no file is a
    ConfigError."""
    base = shard.path.parent.resolve()
    sources: dict[str, Path] = {}
    for record in shard.document["results"]:
        for piece in record.get("evidence", []):
            relative = piece.get("file")
            if relative and relative not in sources:
                sources[relative] = _checked_source(shard.path, base, relative)
    return sources


def rehome_evidence(shard: Shard, evidence_dir: Path, sources: Mapping[str, Path] | None = None) -> Shard:
    """Copy the shard's evidence files into ``evidence_dir`` and return the shard with its records'
    paths rewritten (relative to ``evidence_dir``'s parent). Evidence files are named by content,
    so a file already there with the same name holds the same text (else: ConfigError)."""
    sources = evidence_sources(shard) if sources is None else sources
    moved = {relative: _copy_evidence(shard.path, source, evidence_dir) for relative, source in sources.items()}
    records = []
    for record in shard.document["results"]:
        if "evidence" in record:
            pieces = [{**p, "file": moved[p["file"]]} if p.get("file") else p for p in record["evidence"]]
            record = {**record, "evidence": pieces}
        records.append(record)
    return Shard(shard.path, {**shard.document, "results": records})


def _checked_source(shard_path: Path, base: Path, relative: str) -> Path:
    if not _EVIDENCE_PATH.match(relative):
        raise ConfigError(f"{shard_path}: evidence path {relative[:80]!r} is not <folder>/<content hash>.txt")
    source = (base / relative).resolve()
    if not source.is_relative_to(base) or not source.is_file():
        raise ConfigError(f"{shard_path}: evidence file {relative} is missing (keep each shard's evidence "
                          "folder beside its JSON)")
    return source


def _copy_evidence(shard_path: Path, source: Path, evidence_dir: Path) -> str:
    target = evidence_dir / source.name
    if target.exists():
        if target.read_bytes() != source.read_bytes():
            raise ConfigError(f"{shard_path}: evidence file {source.name} clashes with another shard's "
                              "file of the same name and other content")
    else:
        evidence_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return f"{evidence_dir.name}/{source.name}"


def clear_evidence_dir(evidence_dir: Path) -> None:
    """Remove evidence files an earlier merge left in the folder (only files named like ours)."""
    if evidence_dir.is_dir():
        for path in evidence_dir.iterdir():
            if FILE_NAME.match(path.name) and path.is_file():
                path.unlink()


# --- the whole job ------------------------------------------------------------------------------

@dataclass(frozen=True)
class MergeResult:
    """What :func:`merge_files` wrote: the merged document, its file, the report, the changes."""

    document: dict[str, Any]
    output: Path
    report: Path | None
    changes: Changes | None = None


def merge_files(paths: Sequence[Path | str], output: Path | str, report: Path | None = None,
                write_report: bool = True, baseline: Mapping[str, Any] | None = None,
                baseline_path: str | None = None) -> MergeResult:
    """Read, check and merge shard files; write the merged JSON, its evidence folder and (when
    ``mailaudit.report`` exists and ``write_report``) the auditor's report (default
    ``<output stem>-audit.html``). With a ``baseline`` document, the merged document's
    ``changes`` say what changed since. Nothing is written when a shard or its evidence is refused."""
    output = Path(output).resolve()
    resolved = [Path(p).resolve() for p in paths]
    if output in resolved:
        raise ConfigError(f"-o {output.name}: the output must not be one of the shards")
    if len(set(resolved)) != len(resolved):
        raise ConfigError("a shard file is given twice")
    shards = [read_shard(p) for p in resolved]
    check_compatible(shards)
    sources = [evidence_sources(shard) for shard in shards]  # every check before anything is written
    evidence_dir = evidence_dir_for(output)
    clear_evidence_dir(evidence_dir)
    shards = [rehome_evidence(shard, evidence_dir, found) for shard, found in zip(shards, sources, strict=True)]
    report_path = (report or output.with_name(output.stem + "-audit.html")) if write_report else None
    outputs = {"results_json": output.name, "evidence_dir": evidence_dir.name,
               "html": None, "audit_report": report_path.name if report_path else None}
    document = merge_documents(shards, outputs)
    changes = compare(baseline, document, baseline_path) if baseline is not None else None
    if changes is not None:
        document["changes"] = changes.as_dict()
    _write_json(output, document)
    if report_path is not None:
        write_audit_report(document, report_path, output.parent)
    return MergeResult(document, output, report_path, changes)


def _write_json(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)


# --- run metadata -------------------------------------------------------------------------------

def _merged_run(shards: Sequence[Shard], complete: bool, records: list[dict[str, Any]],
                outputs: Mapping[str, Any] | None, missing: list[str]) -> dict[str, Any]:
    """The first shard's metadata with the combined facts: earliest start, latest end (none while
    a shard has none), every target, the sums, completeness and what interrupted which shard."""
    runs = [shard.document["run"] for shard in shards]
    run = dict(runs[0])
    starts = [_time(r["started"]) for r in runs]
    ends = [_time(r["finished"]) if r.get("finished") else None for r in runs]
    started = min(starts)
    finished = None if None in ends else max(e for e in ends if e is not None)
    run["started"] = _iso(started)
    run["finished"] = _iso(finished) if finished else None
    spans = [float(r.get("duration_s") or 0) for r in runs]
    run["duration_s"] = round((finished - started).total_seconds(), 2) if finished else max(spans)
    run["targets"] = [target for r in runs for target in r["targets"]]
    resolvers = list(dict.fromkeys(str(r.get("resolver", "")) for r in runs if r.get("resolver")))
    if resolvers:
        run["resolver"] = "; ".join(resolvers)
    run["collected"] = sum(int(r.get("collected") or 0) for r in runs)
    run["recorded"] = len(records)
    run["complete"] = complete
    stops = [f"{shard.path.name}: {r['interrupted']}" for shard, r in zip(shards, runs, strict=True)
             if r.get("interrupted")]
    if missing:
        stops.append(f"shard {', '.join(missing)} missing: its servers were not audited")
        run["missing_shards"] = missing
    run["interrupted"] = "; ".join(stops) if stops else None
    options = dict(run.get("options") or {})
    for key in PER_SHARD_OPTIONS:
        options.pop(key, None)
    run["options"] = options
    if outputs is not None:
        run["outputs"] = dict(outputs)
    partial = {"shards": [{"exit_status": r.get("exit_status")} for r in runs], "results": records,
               "run": run}
    run["exit_status"] = exit_status(partial)
    return run


def _shard_entry(shard: Shard) -> dict[str, Any]:
    run = shard.document["run"]
    position = _position(shard)
    return {"file": shard.path.name, "shard": f"{position[0]}/{position[1]}" if position else None,
            "servers": shard.servers, "complete": shard.document["complete"],
            "started": run.get("started"), "finished": run.get("finished"),
            "exit_status": run.get("exit_status"), "records": len(shard.document["results"])}


def _differing_options(mine: Mapping[str, Any], theirs: Mapping[str, Any]) -> str | None:
    for key in sorted(mine.keys() | theirs.keys()):
        if key not in PER_SHARD_OPTIONS and mine.get(key) != theirs.get(key):
            return f"{key} ({mine.get(key)!r:.60} vs {theirs.get(key)!r:.60})"
    return None


def _time(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- waivers and changes ------------------------------------------------------------------------

def _merged_waivers(documents: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]] | None:
    """Expired waivers of any shard; unused only when no shard used them (a shard without the
    field had nothing to say: it used every waiver)."""
    notes = [document.get("waivers") for document in documents]
    if all(n is None for n in notes):
        return None
    expired = _unique(item for n in notes if n for item in n.get("expired", []))
    unused_sets = [{_note_key(item) for item in (n or {}).get("unused", [])} for n in notes]
    common = set.intersection(*unused_sets)
    unused, named = [], set()
    for item in (item for n in notes if n for item in n.get("unused", [])):
        key = _note_key(item)
        if key in common and key not in named:  # one note per waiver, the first shard's words
            named.add(key)
            unused.append(item)
    return {"expired": expired, "unused": unused}


def _note_key(item: Any) -> str:
    """A waiver note's identity: the waiver it names when it says so, else its text."""
    if isinstance(item, Mapping):
        waiver = item.get("waiver", item)
        if isinstance(waiver, Mapping) and "requirement" in waiver:
            return json.dumps([waiver.get(k) for k in ("requirement", "server", "variant", "expires")])
        return json.dumps(item, sort_keys=True, default=str)
    return str(item)


def _unique(items: Iterable[Any]) -> list[Any]:
    seen: set[str] = set()
    kept = []
    for item in items:
        key = json.dumps(item, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            kept.append(item)
    return kept


def _merged_changes(documents: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The shards' own ``changes`` joined, when every shard has them (else none)."""
    parts = [document.get("changes") for document in documents]
    if not parts or any(part is None for part in parts):
        return None
    items = [item for part in parts for item in part["items"]]
    items.sort(key=lambda i: (CHANGES.index(i["change"]), i["server"], i["requirement"], i["variant"]))
    counts = {change: sum(int(part["counts"].get(change, 0)) for part in parts) for change in CHANGES}
    notes = list(dict.fromkeys(note for part in parts for note in part.get("notes", [])))
    return {"baseline": parts[0].get("baseline", {}), "comparable": all(p.get("comparable", True) for p in parts),
            "notes": notes, "counts": counts, "items": items}


# --- command line -------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors exit 4, the suite's usage-error status (not argparse's 2)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"mailaudit.merge: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m mailaudit.merge",
                     description="Merge shards' results JSON into one document and one auditor's report.")
    parser.add_argument("shards", nargs="+", type=Path, help="the shards' results JSON files")
    parser.add_argument("-o", "--output", required=True, type=Path, help="the merged results JSON to write")
    parser.add_argument("--report", type=Path, help="the auditor's report (default <output stem>-audit.html)")
    parser.add_argument("--no-report", action="store_true", help="write no auditor's report")
    parser.add_argument("--baseline", type=Path,
                        help="a previous results JSON: add what changed since (default with --history: the "
                             "newest complete run kept there)")
    parser.add_argument("--fail-on", choices=("findings", "new"), default="findings",
                        help="'new': exit non-zero only for new failures or new errors against the baseline")
    parser.add_argument("--history", type=Path, metavar="DIR", help="keep the merged run there; update the trend page")
    parser.add_argument("--keep", type=int, default=history.DEFAULT_KEEP, help="runs kept in --history")
    parser.add_argument("-q", "--quiet", action="store_true", help="only the per-server lines and the changes")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the merge; return the suite's exit status for the merged results."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.fail_on == "new" and args.baseline is None and args.history is None:
        parser.error("--fail-on new needs --baseline PREVIOUS.json (or --history DIR holding earlier runs)")
    if not 1 <= args.keep <= history.MAX_KEEP:
        parser.error(f"--keep must be between 1 and {history.MAX_KEEP}")
    baseline_path = args.baseline or (history.latest_run(args.history) if args.history else None)
    try:
        baseline = load_baseline(baseline_path) if baseline_path else None
        result = merge_files(args.shards, args.output, args.report, write_report=not args.no_report,
                             baseline=baseline, baseline_path=str(baseline_path) if baseline_path else None)
    except ConfigError as exc:
        print(f"mailaudit.merge: {exc}", file=sys.stderr)
        return EXIT_USAGE
    document, changes = result.document, result.changes
    lines = [*(change_lines(changes) if changes else []),
             *(f"mailaudit {summary_line(s)}" for s in document["servers"])]
    if not args.quiet:
        verdicts = len(document["results"])
        lines.append(f"mailaudit merged {len(args.shards)} shard{'s' if len(args.shards) != 1 else ''}, "
                     f"{verdicts} verdicts: {result.output}")
        if result.report:
            lines.append(f"mailaudit auditor's report: {result.report}")
    if args.history:
        update = history.update_history(document, args.history, args.keep)
        if not args.quiet:
            lines.append(f"mailaudit history: {update.index}")
    print("\n".join(lines))
    status = exit_status(document)
    # --fail-on new without any earlier run (the first night): every finding is new.
    return exit_status_on_new(changes, status) if changes is not None and args.fail_on == "new" else status


if __name__ == "__main__":
    sys.exit(main())
