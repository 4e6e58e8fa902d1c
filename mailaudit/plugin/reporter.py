"""The run's one reporter: it holds every verdict record and writes every output from them.

Registered by the plugin when a run audits servers (never on ``--collect-only``). It collects the
record each requirement test ends with (``report.mailaudit``), writes the results JSON (partially
while the run goes on, marked incomplete; completely at the end), gives pytest its exit status,
prints one line per server, and fills pytest-html's summary and columns from the same summary the
JSON holds, so no output can tell another story.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from html import escape
from pathlib import Path
from typing import Any

import pytest

from mailaudit import __version__
from mailaudit.budget import Deadline
from mailaudit.changes import Changes, change_lines, compare, exit_status_on_new
from mailaudit.config import AuditConfig
from mailaudit.errors import BudgetExceeded
from mailaudit.evidence import EvidenceRef, EvidenceStore
from mailaudit.history import update_history
from mailaudit.plugin.fleet import release
from mailaudit.report import write_audit_report
from mailaudit.results import Record, build_document, summary_line
from mailaudit.waivers import review_waivers

# Exit statuses (README "Exit codes"): pytest's own 2-5 keep their meaning.
EXIT_COMPLIANT, EXIT_FINDINGS, EXIT_INTERNAL, EXIT_UNDECIDED = 0, 1, 3, 6
_PYTEST_OWN = (int(pytest.ExitCode.INTERRUPTED), int(pytest.ExitCode.USAGE_ERROR),
               int(pytest.ExitCode.NO_TESTS_COLLECTED), int(pytest.ExitCode.INTERNAL_ERROR))
PARTIAL_WRITE_INTERVAL_S = 10.0
SEVERITY_RANK = {"critical": 1, "high": 2, "medium": 3, "low": 4, "info": 5}
CSS_FILE = Path(__file__).with_name("pytest_html.css")


@dataclass(frozen=True)
class OutputPaths:
    """Where this run's outputs go: the results JSON, the evidence folder and the auditor's report
    beside it, and pytest-html's page."""

    results_json: Path
    evidence_dir: Path
    audit_report: Path
    html: Path | None

    @classmethod
    def from_config(cls, config: pytest.Config) -> OutputPaths:
        """``--results-json``, else beside ``--html`` (same name, .json), else reports/results.json;
        the evidence folder ``NAME-evidence`` and the auditor's report ``NAME-audit.html`` beside it."""
        html = config.getoption("htmlpath", None)
        given = config.getoption("results_json", None)
        results = Path(given) if given else Path(html).with_suffix(".json") if html else Path("reports/results.json")
        results = results.resolve()
        audit = config.getoption("audit_report", None)
        return cls(results, results.with_name(results.stem + "-evidence"),
                   Path(audit).resolve() if audit else results.with_name(results.stem + "-audit.html"),
                   Path(html).resolve() if html else None)


@dataclass(frozen=True)
class Baseline:
    """The previous run this one is compared with."""

    path: Path
    document: dict[str, Any]


class Reporter:
    """Every record of the run, and every output written from them."""

    def __init__(self, config: pytest.Config, audit: AuditConfig, baseline: Baseline | None = None) -> None:
        self.config, self.audit, self.baseline = config, audit, baseline
        self.paths = OutputPaths.from_config(config)
        self.store = EvidenceStore(self.paths.evidence_dir, self.paths.results_json.parent)
        self.records: dict[str, Record] = {}
        self.started = dt.datetime.now(dt.UTC)
        self._clock = time.monotonic()
        self.deadline = Deadline.after(audit.policy.run.deadline_s, "this run", "run.deadline_s")
        self.deadline_hit = False
        self.document: dict[str, Any] | None = None
        self._last_write = 0.0
        self._write_interval = PARTIAL_WRITE_INTERVAL_S
        self._collected = 0
        self._per_server: dict[str, int] = {}  # tests collected per server, for progress lines
        self.changes: Changes | None = None

    # -- evidence and deadline ------------------------------------------------------------------
    def add_evidence(self, name: str, text: str) -> EvidenceRef:
        """Store one piece of evidence (redacted, once per content) and return its reference."""
        return self.store.add(name, text)

    def link(self, ref: EvidenceRef, page: Path | None) -> str:
        """A relative link from an HTML page to an evidence file."""
        target = self.paths.results_json.parent / ref.file
        return os.path.relpath(target, page.parent if page else self.paths.results_json.parent).replace(os.sep, "/")

    def check_deadline(self) -> None:
        """Before each test: past the run's deadline nothing more is probed."""
        if self.deadline.expired:
            self.deadline_hit = True
            raise BudgetExceeded(f"the run's deadline of {self.deadline.seconds:g} s was reached "
                                 "(policy run.deadline_s): this requirement was not probed")

    # -- pytest hooks ---------------------------------------------------------------------------
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Remember how many verdicts the run set out to produce (in all, and per server)."""
        self._collected = len(session.items)
        for item in session.items:
            callspec = getattr(item, "callspec", None)
            target = callspec.params.get("target") if callspec else None
            if target is not None:
                self._per_server[target.host] = self._per_server.get(target.host, 0) + 1

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep the record a test ended with; rewrite the partial JSON now and then."""
        record = getattr(report, "mailaudit", None)
        if record is None:
            return
        first = report.nodeid not in self.records
        self.records[report.nodeid] = record
        if first:
            self._progress(record["server"])
        if time.monotonic() - self._last_write > self._write_interval:
            started = time.monotonic()
            self._write(complete=False, exit_status=None)
            # a large run's partial writes must not cost more than a few percent of its time
            self._write_interval = max(PARTIAL_WRITE_INTERVAL_S, 20 * (time.monotonic() - started))

    def _progress(self, server: str) -> None:
        """When a server's last verdict is in: its probers are released (memory stays flat over a
        fleet) and, on a run of several servers, one line says so (not with -q)."""
        self._per_server[server] = self._per_server.get(server, 0) - 1
        if self._per_server[server] != 0:
            return
        release(self.config, server)
        if len(self._per_server) < 2 or self.config.get_verbosity() < 0:
            return
        done = sum(1 for left in self._per_server.values() if left <= 0)
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:
            terminal.write_line(f"mailaudit progress: {server} done ({done} of {len(self._per_server)} servers)")

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Write the final results JSON and set the exit status from the records."""
        if int(exitstatus) == int(pytest.ExitCode.USAGE_ERROR):
            self.document = None  # bad input: nothing was probed, nothing is written
            return
        interrupted = int(exitstatus) == int(pytest.ExitCode.INTERRUPTED)
        status = self.exit_status(int(exitstatus))
        if self.empty_shard and status == int(pytest.ExitCode.NO_TESTS_COLLECTED):
            status = EXIT_COMPLIANT  # nothing to audit in this shard: not a failure of a CI matrix job
        complete = not interrupted and not self.deadline_hit
        document = self._build(complete=complete, exit_status=status)
        if self.baseline is not None:
            self.changes = compare(self.baseline.document, document, str(self.baseline.path))
            document["changes"] = self.changes.as_dict()
            if self.config.getoption("fail_on") == "new":
                status = exit_status_on_new(self.changes, status)
                document["run"]["exit_status"] = status
        self._save(document)
        self._write_reports()
        session.exitstatus = status

    @property
    def empty_shard(self) -> bool:
        """--shard selected no server (N larger than the fleet)."""
        return bool(self.audit.options.shard) and not self.audit.targets

    def _write_reports(self) -> None:
        """The auditor's report, and the run kept in --history with its trend page."""
        if self.document is None:
            return
        write_audit_report(self.document, self.paths.audit_report, self.paths.results_json.parent)
        history = self.config.getoption("history")
        if history:
            update_history(self.document, history, self.config.getoption("history_keep"))

    def exit_status(self, pytest_status: int) -> int:
        """0 compliant, 1 findings, 3 internal error, 6 could not decide; pytest's own codes stay."""
        if pytest_status in _PYTEST_OWN and pytest_status != int(pytest.ExitCode.INTERNAL_ERROR):
            return pytest_status
        outcomes = {r["outcome"] for r in self.records.values()}
        if pytest_status == int(pytest.ExitCode.INTERNAL_ERROR) or any(
                r.get("internal_error") for r in self.records.values()):
            return EXIT_INTERNAL
        if "failed" in outcomes:
            return EXIT_FINDINGS
        if outcomes & {"error", "inconclusive"}:
            return EXIT_UNDECIDED
        return EXIT_COMPLIANT

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """One line per server, then where the outputs are."""
        if self.document is None:
            return
        if self.empty_shard:
            terminalreporter.write_line(f"mailaudit: shard {self.audit.options.shard} has no servers; nothing audited")
        if self.changes is not None:
            for line in change_lines(self.changes):
                terminalreporter.write_line(f"mailaudit {line}")
        elif self.config.getoption("fail_on") == "new":
            terminalreporter.write_line("mailaudit: no baseline yet (the first run kept in --history): "
                                        "every finding counts as new")
        for summary in (self.document or {}).get("servers", []):
            terminalreporter.write_line(f"mailaudit {summary_line(summary)}")
        for kind, messages in self.document.get("waivers", {}).items():
            for message in messages:
                terminalreporter.write_line(f"mailaudit waiver {kind}: {message}")
        terminalreporter.write_line(f"mailaudit results: {self.paths.results_json}")
        terminalreporter.write_line(f"mailaudit auditor's report: {self.paths.audit_report}")

    # -- the results JSON -----------------------------------------------------------------------
    def _write(self, complete: bool, exit_status: int | None) -> None:
        """Build the document from the records so far and write it."""
        self._save(self._build(complete, exit_status))

    def _build(self, complete: bool, exit_status: int | None) -> dict[str, Any]:
        records = list(self.records.values())
        document = build_document(self._run(exit_status, complete), records,
                                  complete, [t.host for t in self.audit.targets])
        if self.audit.waivers:
            notes = review_waivers(self.audit.waivers, records, dt.date.today())
            document["waivers"] = {kind: [n.message for n in notes if n.kind == kind]
                                   for kind in ("expired", "unused")}
        return document

    def _save(self, document: dict[str, Any]) -> None:
        self._last_write = time.monotonic()
        self.document = document
        path = self.paths.results_json
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        with temporary.open("w", encoding="utf-8") as out:  # streamed: no second copy of a large document
            json.dump(document, out, indent=1, ensure_ascii=False)
            out.write("\n")
        os.replace(temporary, path)

    def _run(self, exit_status: int | None, complete: bool) -> dict[str, Any]:
        audit, options = self.audit, self.audit.options
        finished = dt.datetime.now(dt.UTC)
        interrupted = None
        if exit_status == int(pytest.ExitCode.INTERRUPTED):
            interrupted = "interrupted (Ctrl-C or SIGTERM) before every requirement was probed"
        elif self.deadline_hit:
            interrupted = f"the run's deadline of {self.deadline.seconds:g} s was reached (policy run.deadline_s)"
        return {
            "suite_version": __version__,
            "started": _iso(self.started),
            "finished": _iso(finished) if exit_status is not None else None,
            "duration_s": round(time.monotonic() - self._clock, 2),
            "policy": {"name": audit.policy.name, "path": str(audit.policy_path), "sha256": policy_digest(audit)},
            "targets": [{"server": t.host, "ip": t.ip, "domain": t.domain, "api_url": t.api_url,
                         "tags": list(t.tags)} for t in audit.targets],
            "resolver": str(audit.dns_server) if audit.dns_server else "system resolver",
            "intrusive": audit.intrusive,
            "options": {
                "api_insecure": options.api_insecure,
                "api_allow_http": options.api_allow_http,
                "ca_file": options.ca_file,
                "waivers": options.waivers,
                "smtp_user": options.smtp_user,
                "local_recipient": options.local_recipient,
                "relay_recipient_domain": audit.relay_recipient_domain,
                "dkim_selectors": list(options.dkim_selectors),
                "outbound_ips": list(options.outbound_ips),
                "tls_ports": list(audit.tls_ports) if audit.tls_ports else None,
                "api_fieldmap": self.config.getoption("api_fieldmap", None),
            },
            "shard": options.shard,
            "inventory": options.inventory,
            "baseline": str(self.baseline.path) if self.baseline else None,
            "collected": self._collected,
            "recorded": len(self.records),
            "complete": complete,
            "interrupted": interrupted,
            "exit_status": exit_status,
            "outputs": {"results_json": self.paths.results_json.name,
                        "evidence_dir": self.paths.evidence_dir.name,
                        "audit_report": self.paths.audit_report.name,
                        "html": self.paths.html.name if self.paths.html else None},
        }

    # -- pytest-html (optional hooks: called only when pytest-html is active) -------------------------
    @pytest.hookimpl(optionalhook=True)
    def pytest_html_report_title(self, report: Any) -> None:
        """Title the report after the audited servers."""
        report.title = "mailaudit: " + ", ".join(t.host for t in self.audit.targets)

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str],
                                    session: pytest.Session) -> None:
        """The per-server summary the JSON holds, above pytest-html's own counts."""
        for server in (self.document or {}).get("servers", []):
            prefix.append(f'<p class="mailaudit-summary"><strong>{escape(summary_line(server))}</strong></p>')
        if self.changes is not None:
            prefix.append(f'<p class="mailaudit-summary">{escape(change_lines(self.changes, 0)[0])}</p>')
        link = os.path.relpath(self.paths.audit_report, self.paths.html.parent if self.paths.html else
                               self.paths.results_json.parent).replace(os.sep, "/")
        prefix.append(f'<p class="mailaudit-summary">The auditor\'s report (findings ranked, remediation): '
                      f'<a href="{escape(link)}">{escape(self.paths.audit_report.name)}</a>. '
                      "Counts below are pytest's: one row per verdict; inconclusive and waived rows are "
                      "under pytest's <em>Skipped</em> filter. "
                      f"Machine-readable results: {escape(self.paths.results_json.name)}.</p>")

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        """Columns an auditor sorts by: requirement, severity (by rank), server, variant."""
        cells.insert(1, '<th class="sortable" data-column-type="requirement">Requirement</th>')
        cells.insert(2, '<th class="sortable" data-column-type="severity">Severity</th>')
        cells.insert(3, '<th class="sortable" data-column-type="server">Server</th>')
        cells.insert(4, '<th class="sortable" data-column-type="variant">Variant</th>')

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        """Fill the columns from the record; the Result cell shows the suite's outcome."""
        record = getattr(report, "mailaudit", None) or {}
        outcome = record.get("outcome", "")
        if outcome:
            cells[0] = cells[0].replace('class="col-result"', f'class="col-result verdict-{escape(outcome)}"', 1)
        severity = record.get("severity", "")
        rank = SEVERITY_RANK.get(severity, 9)
        cells.insert(1, f'<td class="col-requirement">{escape(record.get("requirement", ""))}</td>')
        cells.insert(2, f'<td class="col-severity"><span hidden>{rank}</span>{escape(severity)}</td>')
        cells.insert(3, f'<td class="col-server">{escape(record.get("server", ""))}</td>')
        cells.insert(4, f'<td class="col-variant">{escape(record.get("variant", ""))}</td>')

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_html(self, report: pytest.TestReport, data: list[str]) -> None:
        """The row's log: the message, then each small piece of evidence (larger ones are linked)."""
        record = getattr(report, "mailaudit", None)
        if record is None:
            return
        data.clear()
        data.append(f"{escape(record['outcome'])}: {escape(record['message'])}\n")
        if record.get("internal_error"):
            data.append(escape(report.longreprtext) + "\n")
        inline = record["outcome"] in ("failed", "error", "inconclusive")  # passes: links only (size)
        for piece in record.get("evidence", []):
            text = piece.get("text")
            shown = escape(text) if inline and text is not None else f"({piece['chars']} characters: linked above)"
            data.append(f"{' evidence: ' + escape(piece['name']) + ' ':-^80}\n{shown}\n")


def policy_digest(audit: AuditConfig) -> str:
    """A content hash of the merged policy (values and sources), to tell runs under the same policy."""
    data = json.dumps(asdict(audit.policy), sort_keys=True, default=str)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
