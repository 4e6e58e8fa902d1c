"""The pytest plugin: options become an AuditConfig, verdicts become report rows and JSON records.

Outcomes beyond pytest's own: *inconclusive* (probed, undecidable) and *waived* (a failure an
auditor accepted until a date) are pytest skips underneath, reported under their own names. A
ProbeError in a fixture becomes an *error* shown as one plain line, never a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any

import pytest

from mailaudit import __version__
from mailaudit.catalog import load_catalog
from mailaudit.config import AuditConfig, Options, Target, build_config
from mailaudit.errors import ConfigError, ProbeError
from mailaudit.fieldmap import load_fieldmap
from mailaudit.redact import redact
from mailaudit.verdict import Evaluation, Outcome

CONFIG_KEY = pytest.StashKey[AuditConfig]()
RECORDS_KEY = pytest.StashKey[list[dict[str, Any]]]()
VERDICT_KEY = pytest.StashKey[Evaluation]()
EVIDENCE_KEY = pytest.StashKey[list[tuple[str, str]]]()
INCONCLUSIVE_PREFIX = "INCONCLUSIVE: "


def pytest_addoption(parser: pytest.Parser) -> None:
    """The command-line contract of DESIGN.md, plus the inputs individual requirements need."""
    group = parser.getgroup("mailaudit", "mail server audit")
    add = group.addoption
    add("--server", action="append", default=[], metavar="HOST", help="server to audit (repeatable)")
    add("--domain", action="append", default=[], metavar="DOMAIN",
        help="its mail domain (default: the server name without its first label); one, or one per --server")
    add("--dns-server", metavar="IP[:PORT]", help="resolver for every DNS query (default: the system's)")
    add("--policy", default="policies/baseline.yaml", metavar="FILE", help="policy profile (YAML)")
    add("--waivers", metavar="FILE", help="waivers (YAML list of requirement/server/reason/expires)")
    add("--results-json", metavar="PATH",
        help="machine-readable results (default: beside the HTML report, else reports/results.json)")
    add("--intrusive", action="store_true", help="also run probes that may trigger the server's IDS")
    add("--api-url", action="append", default=[], metavar="URL",
        help="SmarterMail web URL; one with an optional {server} placeholder, or one per --server")
    add("--api-insecure", action="store_true", help="do not verify the API's TLS certificate (shown in the report)")
    add("--ca-file", metavar="FILE", help="CA bundle to trust instead of the system's (TLS checks, API)")
    add("--smtp-user", metavar="USER", help="test account for SMTP AUTH (password: MAILAUDIT_SMTP_PASSWORD)")
    add("--local-recipient", metavar="ADDR", help="local recipient for spoofing checks (default postmaster@DOMAIN)")
    add("--relay-recipient-domain", metavar="DOMAIN",
        help="external domain for relay probes (default: the policy's, example.net)")
    add("--dkim-selector", action="append", default=[], metavar="SELECTOR", help="DKIM selector to check (repeatable)")
    add("--outbound-ip", action="append", default=[], metavar="IP",
        help="IP the server sends from, if not its own (repeatable)")
    add("--tls-ports", metavar="LIST", help="comma list of ports for the TLS checks (default: the policy's)")
    add("--api-fieldmap", metavar="FILE",
        help="SmarterMail API field map (default: mailaudit/fieldmap.yaml); edit a copy to fix "
             "assumed endpoints/fields for your build")


def _options(config: pytest.Config) -> Options:
    get = config.getoption
    return Options(
        servers=tuple(get("server")),
        domains=tuple(get("domain")),
        dns_server=get("dns_server"),
        policy=get("policy"),
        waivers=get("waivers"),
        intrusive=get("intrusive"),
        api_urls=tuple(get("api_url")),
        api_insecure=get("api_insecure"),
        ca_file=get("ca_file"),
        smtp_user=get("smtp_user"),
        local_recipient=get("local_recipient"),
        relay_recipient_domain=get("relay_recipient_domain"),
        dkim_selectors=tuple(get("dkim_selector")),
        outbound_ips=tuple(get("outbound_ip")),
        tls_ports=get("tls_ports"),
    )


def pytest_configure(config: pytest.Config) -> None:
    """Validate every option before any probe: a bad value stops the run with one line."""
    config.stash[RECORDS_KEY] = []
    options = _options(config)
    if not options.servers:
        return
    try:
        audit = build_config(options)
        load_catalog()
        if config.getoption("api_fieldmap"):
            load_fieldmap(config.getoption("api_fieldmap"))
    except ConfigError as exc:
        raise pytest.UsageError(f"mailaudit: {exc}") from None
    config.stash[CONFIG_KEY] = audit
    _add_environment(config, audit)
    _TITLE[0] = "mailaudit report: " + ", ".join(t.host for t in audit.targets)


def _add_environment(config: pytest.Config, audit: AuditConfig) -> None:
    """The report's environment table: what was audited, how, with which suite and policy."""
    try:
        from pytest_metadata.plugin import metadata_key
    except ImportError:
        return
    meta = config.stash.get(metadata_key, None)
    if meta is None:
        return
    for key in [k for k in meta if k not in ("Python", "Platform")]:
        del meta[key]
    meta["Targets"] = ", ".join(f"{t.host} ({t.ip}, domain {t.domain})" for t in audit.targets)
    meta["Policy"] = f"{audit.policy.name} ({audit.policy_path})"
    meta["Suite version"] = f"mailaudit {__version__}"
    meta["Date"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    meta["DNS server"] = str(audit.dns_server or "system resolver")
    meta["Intrusive probes"] = "on" if audit.intrusive else "off (use --intrusive)"
    if any(t.api_url for t in audit.targets):
        meta["API TLS verification"] = "OFF (--api-insecure)" if audit.options.api_insecure else "on"
    if audit.waivers:
        meta["Waivers"] = str(audit.options.waivers)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize every test that uses ``target`` over the audited servers (session scope)."""
    if "target" not in metafunc.fixturenames:
        return
    audit = metafunc.config.stash.get(CONFIG_KEY, None)
    targets = audit.targets if audit else ()
    metafunc.parametrize("target", targets, ids=[t.host for t in targets], indirect=True, scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Check requirement IDs; keep intrusive tests only with --intrusive, and run them last."""
    catalog = load_catalog()
    needs_server = False
    for item in items:
        for mark in item.iter_markers("requirement"):
            if not mark.args or mark.args[0] not in catalog:
                raise pytest.UsageError(
                    f"mailaudit: {item.nodeid}: unknown requirement ID {mark.args[:1]!r}"
                )
        needs_server = needs_server or "target" in getattr(item, "fixturenames", ())
    if needs_server and CONFIG_KEY not in config.stash:
        raise pytest.UsageError("mailaudit: give --server HOST (the mail server to audit)")
    if not config.getoption("intrusive"):
        kept = [i for i in items if i.get_closest_marker("intrusive") is None]
        deselected = [i for i in items if i.get_closest_marker("intrusive") is not None]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = kept
    items.sort(key=lambda i: i.get_closest_marker("intrusive") is not None)


@pytest.fixture(scope="session")
def audit_config(pytestconfig: pytest.Config) -> AuditConfig:
    """The validated configuration of this run."""
    return pytestconfig.stash[CONFIG_KEY]


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Target:
    """The server under audit (parametrized over every --server)."""
    return request.param


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """Attach a named piece of evidence (redacted, escaped in the report) to the current test."""
    def attach(name: str, text: str) -> None:
        request.node.stash.setdefault(EVIDENCE_KEY, []).append((name, redact(text)))
    return attach


@pytest.fixture
def verdict(request: pytest.FixtureRequest, evidence) -> Callable[[Evaluation], Evaluation]:
    """Record an evaluation for the report; skip or mark inconclusive where it says so."""
    def record(evaluation: Evaluation) -> Evaluation:
        request.node.stash[VERDICT_KEY] = evaluation
        if evaluation.evidence:
            evidence(evaluation.evidence_name, evaluation.evidence)
        if evaluation.outcome is Outcome.SKIPPED:
            _skip(redact(evaluation.message))
        if evaluation.outcome is Outcome.INCONCLUSIVE:
            _skip(INCONCLUSIVE_PREFIX + redact(evaluation.message))
        return evaluation
    return record


def _skip(reason: str) -> None:
    """Skip, reported at the test's own location (not this plugin's line)."""
    raise pytest.skip.Exception(reason, _use_item_location=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Shape each report: one-line probe errors, inconclusive/waived outcomes, evidence, metadata."""
    report: pytest.TestReport = yield
    if call.excinfo is not None and isinstance(call.excinfo.value, ProbeError):
        report.longrepr = f"{_server(item) or 'probe'}: {redact(str(call.excinfo.value))}"
    _classify(item, report)
    if report.when == "call" or report.outcome != "passed":
        _attach_evidence(item, report)
    return report


def _classify(item: pytest.Item, report: pytest.TestReport) -> None:
    """Put requirement, server, variant, severity, outcome and message on the report."""
    req_id = _requirement(item)
    evaluation = item.stash.get(VERDICT_KEY, None)
    outcome, message = _outcome(report, evaluation)
    if outcome == Outcome.FAILED.value and report.when == "call":
        waiver = _waiver_for(item, req_id)
        if waiver is not None:
            outcome = Outcome.WAIVED.value
            message = f"waived until {waiver.expires}: {waiver.reason} — {message}"
            report.outcome = "skipped"
            report.longrepr = (str(item.path), 0, f"WAIVED: {message}")
    severity = (evaluation.severity if evaluation and evaluation.severity else None) or (
        load_catalog()[req_id].severity if req_id else "")
    report.user_properties.extend([
        ("requirement", req_id or ""), ("server", _server(item)), ("variant", _variant(item)),
        ("severity", severity), ("outcome", outcome), ("message", redact(message)),
    ])


def _outcome(report: pytest.TestReport, evaluation: Evaluation | None) -> tuple[str, str]:
    """Map pytest's report onto the suite's outcomes, with the message an auditor reads."""
    text = report.longreprtext or ""
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else text
        reason = reason.removeprefix("Skipped: ")
        if reason.startswith(INCONCLUSIVE_PREFIX):
            return Outcome.INCONCLUSIVE.value, reason[len(INCONCLUSIVE_PREFIX):]
        return Outcome.SKIPPED.value, reason
    if report.failed:
        if report.when != "call" or evaluation is None:
            return Outcome.ERROR.value, text.strip().splitlines()[-1] if text.strip() else "error"
        return Outcome.FAILED.value, evaluation.message
    return Outcome.PASSED.value, evaluation.message if evaluation else ""


def _waiver_for(item: pytest.Item, req_id: str | None):
    audit = item.config.stash.get(CONFIG_KEY, None)
    if audit is None or req_id is None:
        return None
    today = dt.date.today()
    return next((w for w in audit.waivers
                 if w.covers(req_id, _server(item), _variant(item), today)), None)


def _requirement(item: pytest.Item) -> str | None:
    mark = item.get_closest_marker("requirement")
    return mark.args[0] if mark and mark.args else None


def _server(item: pytest.Item) -> str:
    callspec = getattr(item, "callspec", None)
    target = callspec.params.get("target") if callspec else None
    return target.host if isinstance(target, Target) else ""


def _variant(item: pytest.Item) -> str:
    """The parametrization of the test beyond the server (port, relay form, TLS version...)."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return ""
    server = _server(item)
    text = callspec.id.replace(server, "", 1) if server else callspec.id
    return re.sub("-{2,}", "-", text).strip("-")


def _attach_evidence(item: pytest.Item, report: pytest.TestReport) -> None:
    """Evidence goes inline into the report (escaped) and as a downloadable text extra."""
    pieces = item.stash.get(EVIDENCE_KEY, [])
    if not pieces or getattr(report, "_mailaudit_evidence", False):
        return
    report._mailaudit_evidence = True
    report.sections.extend((f"evidence: {name}", text) for name, text in pieces)
    try:
        from pytest_html import extras
    except ImportError:
        return
    report.extras = [*getattr(report, "extras", []), *(extras.text(t, name=n) for n, t in pieces)]


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):
    """Name the suite's own outcomes in the terminal summary (``3 inconclusive, 1 waived``)."""
    outcome = dict(report.user_properties).get("outcome")
    if report.when == "call" and outcome == Outcome.INCONCLUSIVE.value:
        return "inconclusive", "I", "INCONCLUSIVE"
    if report.when == "call" and outcome == Outcome.WAIVED.value:
        return "waived", "W", "WAIVED"
    return None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect one results record per verdict (the last phase that decided it)."""
    props = dict(report.user_properties)
    if not props.get("requirement"):
        return
    decided = report.when == "call" or (report.when == "setup" and not report.passed) or (
        report.when == "teardown" and report.failed)
    if decided:
        _RECORDS.setdefault(report.nodeid, {}).update(
            {k: props.get(k, "") for k in ("requirement", "server", "variant", "outcome", "severity", "message")},
            nodeid=report.nodeid,
        )


_RECORDS: dict[str, dict[str, Any]] = {}


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write the machine-readable results next to the HTML report (or where --results-json says)."""
    config = session.config
    if CONFIG_KEY not in config.stash:
        return
    path = _results_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    records = list(_RECORDS.values())
    path.write_text(json.dumps({"suite": f"mailaudit {__version__}", "results": records},
                               indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    config.stash[RECORDS_KEY] = records


def _results_path(config: pytest.Config) -> Path:
    given = config.getoption("results_json")
    if given:
        return Path(given)
    html = config.getoption("htmlpath", None)
    return Path(html).with_suffix(".json") if html else Path("reports/results.json")


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    """One line per server: how many requirements passed, failed, errored."""
    if CONFIG_KEY not in config.stash:
        return
    for target in config.stash[CONFIG_KEY].targets:
        counts: dict[str, int] = {}
        for record in _RECORDS.values():
            if record["server"] == target.host:
                counts[record["outcome"]] = counts.get(record["outcome"], 0) + 1
        summary = ", ".join(f"{n} {o}" for o, n in sorted(counts.items())) or "no verdicts"
        terminalreporter.write_line(f"mailaudit {target.host}: {summary}")
    terminalreporter.write_line(f"mailaudit results: {_results_path(config)}")


# --- pytest-html hooks (only called when pytest-html is active) ---------------------------------

_TITLE = ["mailaudit compliance report"]


def pytest_html_report_title(report) -> None:
    """Title the report after the audited servers."""
    report.title = _TITLE[0]


def pytest_html_results_table_header(cells: list[str]) -> None:
    """Columns an auditor sorts by: requirement, severity, server, verdict."""
    cells.insert(1, '<th class="sortable" data-column-type="requirement">Requirement</th>')
    cells.insert(2, '<th class="sortable" data-column-type="severity">Severity</th>')
    cells.insert(3, '<th class="sortable" data-column-type="server">Server</th>')
    cells.insert(4, '<th class="sortable" data-column-type="verdict">Verdict</th>')


def pytest_html_results_table_row(report: pytest.TestReport, cells: list[str]) -> None:
    """Fill the columns from the report's properties, HTML-escaped."""
    props = dict(report.user_properties)
    cells.insert(1, f'<td class="col-requirement">{escape(props.get("requirement", ""))}</td>')
    cells.insert(2, f'<td class="col-severity">{escape(props.get("severity", ""))}</td>')
    cells.insert(3, f'<td class="col-server">{escape(props.get("server", ""))}</td>')
    cells.insert(4, f'<td class="col-verdict">{escape(props.get("outcome", ""))}</td>')
