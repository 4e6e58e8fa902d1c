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
from mailaudit.config import AuditConfig
from mailaudit.errors import BudgetExceeded
from mailaudit.evidence import EvidenceRef, EvidenceStore
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
    """Where this run's outputs go: the results JSON, the evidence folder beside it, the reports."""

    results_json: Path
    evidence_dir: Path
    html: Path | None

    @classmethod
    def from_config(cls, config: pytest.Config) -> OutputPaths:
        """``--results-json``, else beside ``--html`` (same name, .json), else reports/results.json."""
        html = config.getoption("htmlpath", None)
        given = config.getoption("results_json", None)
        results = Path(given) if given else Path(html).with_suffix(".json") if html else Path("reports/results.json")
        results = results.resolve()
        return cls(results, results.with_name(results.stem + "-evidence"), Path(html).resolve() if html else None)


class Reporter:
    """Every record of the run, and every output written from them."""

    def __init__(self, config: pytest.Config, audit: AuditConfig) -> None:
        self.config, self.audit = config, audit
        self.paths = OutputPaths.from_config(config)
        self.store = EvidenceStore(self.paths.evidence_dir, self.paths.results_json.parent)
        self.records: dict[str, Record] = {}
        self.started = dt.datetime.now(dt.UTC)
        self._clock = time.monotonic()
        self.deadline = Deadline.after(audit.policy.run.deadline_s, "this run", "run.deadline_s")
        self.deadline_hit = False
        self.document: dict[str, Any] | None = None
        self._last_write = 0.0
        self._collected = 0

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
        """Remember how many verdicts the run set out to produce."""
        self._collected = len(session.items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep the record a test ended with; rewrite the partial JSON now and then."""
        record = getattr(report, "mailaudit", None)
        if record is None:
            return
        self.records[report.nodeid] = record
        if time.monotonic() - self._last_write > PARTIAL_WRITE_INTERVAL_S:
            self._write(complete=False, exit_status=None)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Write the final results JSON and set the exit status from the records."""
        if int(exitstatus) == int(pytest.ExitCode.USAGE_ERROR):
            self.document = None  # bad input: nothing was probed, nothing is written
            return
        interrupted = int(exitstatus) == int(pytest.ExitCode.INTERRUPTED)
        status = self.exit_status(int(exitstatus))
        self._write(complete=not interrupted and not self.deadline_hit, exit_status=status)
        session.exitstatus = status

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
        for summary in (self.document or {}).get("servers", []):
            terminalreporter.write_line(f"mailaudit {summary_line(summary)}")
        for kind, messages in self.document.get("waivers", {}).items():
            for message in messages:
                terminalreporter.write_line(f"mailaudit waiver {kind}: {message}")
        terminalreporter.write_line(f"mailaudit results: {self.paths.results_json}")

    # -- the results JSON -----------------------------------------------------------------------
    def _write(self, complete: bool, exit_status: int | None) -> None:
        self._last_write = time.monotonic()
        records = list(self.records.values())
        self.document = build_document(self._run(exit_status, complete), records,
                                       complete, [t.host for t in self.audit.targets])
        if self.audit.waivers:
            notes = review_waivers(self.audit.waivers, records, dt.date.today())
            self.document["waivers"] = {kind: [n.message for n in notes if n.kind == kind]
                                        for kind in ("expired", "unused")}
        path = self.paths.results_json
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(json.dumps(self.document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
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
            "targets": [{"server": t.host, "ip": t.ip, "domain": t.domain, "api_url": t.api_url}
                        for t in audit.targets],
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
            "collected": self._collected,
            "recorded": len(self.records),
            "complete": complete,
            "interrupted": interrupted,
            "exit_status": exit_status,
            "outputs": {"results_json": self.paths.results_json.name,
                        "evidence_dir": self.paths.evidence_dir.name,
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
        prefix.append('<p class="mailaudit-summary">Counts below are pytest\'s: one row per verdict; '
                      "inconclusive and waived rows are under pytest's <em>Skipped</em> filter. "
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
        for piece in record.get("evidence", []):
            text = piece.get("text")
            shown = escape(text) if text is not None else f"({piece['chars']} characters: see the linked file)"
            data.append(f"{' evidence: ' + escape(piece['name']) + ' ':-^80}\n{shown}\n")


def policy_digest(audit: AuditConfig) -> str:
    """A content hash of the merged policy (values and sources), to tell runs under the same policy."""
    data = json.dumps(asdict(audit.policy), sort_keys=True, default=str)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
