"""The pytest plugin: options become an AuditConfig, and every requirement test ends in one record.

Each requirement test ends through the ``verdict`` helper (``mailaudit.plugin.outcomes``); the
makereport hook turns each test's end into one ``Decision`` and one record (``report.mailaudit``,
plus the JUnit properties), and the ``Reporter`` (``mailaudit.plugin.reporter``) writes every
output from those records. Outcomes beyond pytest's own (*inconclusive*, *waived*) are pytest skips
underneath, told apart by type, never by text.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import re
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mailaudit import __version__
from mailaudit.catalog import load_catalog
from mailaudit.changes import load_baseline
from mailaudit.config import AuditConfig, Options, Target, build_config
from mailaudit.errors import ConfigError
from mailaudit.evidence import EvidenceRef
from mailaudit.fieldmap import load_fieldmap
from mailaudit.history import latest_run
from mailaudit.plugin.fleet import Fleet, PrefetchSpec
from mailaudit.plugin.outcomes import Decision, VerdictEnded, VerdictFailed, apply_to_report, decide, inconclusive
from mailaudit.plugin.reporter import CSS_FILE, Baseline, Reporter
from mailaudit.redact import redact
from mailaudit.results import catalog_fields
from mailaudit.verdict import Evaluation, Outcome
from mailaudit.waivers import Waiver

__all__ = ["CONFIG_KEY", "inconclusive"]

CONFIG_KEY = pytest.StashKey[AuditConfig]()
REPORTER_KEY = pytest.StashKey[Reporter]()
STATE_KEY = pytest.StashKey["TestState"]()
TESTS_FOLDER = re.compile(r"^tests_[a-z0-9_]+$")


@dataclass
class TestState:
    """What one requirement test gathered on its way to its verdict."""

    __test__ = False  # not a test class, whatever its name

    evaluation: Evaluation | None = None
    evidence: list[EvidenceRef] = field(default_factory=list)
    waiver: Waiver | None = None
    lapsed_waiver: Waiver | None = None
    record: dict[str, Any] | None = None


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """The hook through which each probe family hands its per-server jobs to the fleet."""
    pluginmanager.add_hookspecs(PrefetchSpec)


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session):
    """Probe every server in the background while the tests run (mailaudit.plugin.fleet)."""
    audit = session.config.stash.get(CONFIG_KEY, None)
    fleet = Fleet(session.config, audit) if audit is not None and session.items else None
    if fleet is not None:
        fleet.start(session.items)
    try:
        return (yield)
    finally:
        if fleet is not None:
            fleet.stop()


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
    add("--api-allow-http", action="store_true",
        help="allow a plain http:// --api-url (credentials then cross the network in clear; shown in the report)")
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
    add("--inventory", metavar="FILE",
        help="the servers and their own inputs (YAML; credentials by environment variable name); "
             "instead of --server")
    add("--shard", metavar="K/N", help="audit only shard K of N of the servers (merge with python -m mailaudit.merge)")
    add("--audit-report", metavar="PATH",
        help="the auditor's report (default: beside the results JSON, NAME-audit.html)")
    add("--baseline", metavar="PREVIOUS.json",
        help="a previous run's results: new failures, fixed, new errors... lead every output")
    add("--fail-on", choices=("any", "new"), default="any",
        help="exit non-zero on any finding (default) or only on new failures/errors against the baseline")
    add("--history", metavar="DIR",
        help="keep each run's results in DIR and write the trend page DIR/index.html; without "
             "--baseline, the newest complete run there is the baseline")
    add("--history-keep", type=int, default=60, metavar="N", help="runs kept in --history (default 60)")


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
        api_allow_http=get("api_allow_http"),
        ca_file=get("ca_file"),
        smtp_user=get("smtp_user"),
        local_recipient=get("local_recipient"),
        relay_recipient_domain=get("relay_recipient_domain"),
        dkim_selectors=tuple(get("dkim_selector")),
        outbound_ips=tuple(get("outbound_ip")),
        tls_ports=get("tls_ports"),
        inventory=get("inventory"),
        shard=get("shard"),
    )


def pytest_configure(config: pytest.Config) -> None:
    """Validate every option before any probe (a bad value stops the run with one line), then
    register the reporter that writes the outputs."""
    if getattr(config.option, "numprocesses", None):
        raise pytest.UsageError("mailaudit: pytest-xdist (-n) is not supported: the suite probes servers "
                                "concurrently itself; split a fleet across machines with --shard")
    options = _options(config)
    if not options.servers and not options.inventory:
        return
    try:
        audit = build_config(options)
        load_catalog()
        if config.getoption("api_fieldmap"):
            load_fieldmap(config.getoption("api_fieldmap"))
        baseline = _baseline(config)
    except ConfigError as exc:
        raise pytest.UsageError(f"mailaudit: {exc}") from None
    config.stash[CONFIG_KEY] = audit
    if config.option.collectonly:
        return
    reporter = Reporter(config, audit, baseline)
    config.pluginmanager.register(reporter, "mailaudit-reporter")
    config.stash[REPORTER_KEY] = reporter
    _add_environment(config, audit)
    if hasattr(config.option, "css"):
        config.option.css = [*(config.option.css or []), str(CSS_FILE)]
    if config.get_verbosity() < 0:  # -q, e.g. from cron: details go to the files, not the mail
        config.option.tbstyle = "no"
        config.option.reportchars = ""
    _stop_cleanly_on_sigterm()


def _baseline(config: pytest.Config) -> Baseline | None:
    """The run to compare with: --baseline, else the newest complete run kept in --history."""
    given = config.getoption("baseline")
    history = config.getoption("history")
    if config.getoption("history_keep") < 1:
        raise ConfigError("--history-keep: keep at least 1 run")
    path = Path(given) if given else latest_run(history) if history else None
    if path is None:
        if config.getoption("fail_on") == "new" and not history:
            raise ConfigError("--fail-on new needs --baseline PREVIOUS.json or --history DIR")
        return None
    return Baseline(path, load_baseline(path))


def _stop_cleanly_on_sigterm() -> None:
    """SIGTERM (a scheduler's timeout) ends the run like Ctrl-C: the reports are still written."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    with contextlib.suppress(ValueError):  # not the main thread (in-process self-tests): leave it
        signal.signal(signal.SIGTERM, interrupt)


def _add_environment(config: pytest.Config, audit: AuditConfig) -> None:
    """pytest-html's environment table: what was audited, how, with which suite and policy."""
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
        if audit.options.api_allow_http:
            meta["API plain HTTP"] = "allowed (--api-allow-http)"
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
    """Every audit test names a known requirement; intrusive tests are skipped without --intrusive
    (so the report says they were not run) and otherwise run last."""
    catalog = load_catalog()
    needs_server = False
    for item in items:
        marks = list(item.iter_markers("requirement"))
        if not marks and _in_tests_folder(item, config):
            raise pytest.UsageError(f"mailaudit: {item.nodeid} has no @pytest.mark.requirement(ID): "
                                    "every audit test proves one requirement of the catalog")
        for mark in marks:
            if not mark.args or mark.args[0] not in catalog:
                raise pytest.UsageError(f"mailaudit: {item.nodeid}: unknown requirement ID {mark.args[:1]!r}")
        needs_server = needs_server or "target" in getattr(item, "fixturenames", ())
    if needs_server and CONFIG_KEY not in config.stash:
        raise pytest.UsageError("mailaudit: give --server HOST or --inventory FILE (the mail servers to audit)")
    audit = config.stash.get(CONFIG_KEY, None)
    if audit is not None and not audit.targets and items:  # an empty --shard
        config.hook.pytest_deselected(items=list(items))
        items[:] = []
        return
    if not config.getoption("intrusive"):
        skip = pytest.mark.skip(reason="intrusive probe: not run without --intrusive (it may trip the "
                                       "server's intrusion detection)")
        for item in items:
            if item.get_closest_marker("intrusive") is not None:
                item.add_marker(skip)
    items.sort(key=lambda i: i.get_closest_marker("intrusive") is not None)


def _in_tests_folder(item: pytest.Item, config: pytest.Config) -> bool:
    """Is the item's file inside one of the suite's tests_* folders?"""
    try:
        parts = Path(item.path).resolve().relative_to(config.rootpath.resolve()).parts
    except ValueError:
        return False
    return bool(parts) and TESTS_FOLDER.match(parts[0]) is not None


@pytest.fixture(scope="session")
def audit_config(pytestconfig: pytest.Config) -> AuditConfig:
    """The validated configuration of this run."""
    return pytestconfig.stash[CONFIG_KEY]


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Target:
    """The server under audit (parametrized over every --server)."""
    return request.param


def _state(item: pytest.Item) -> TestState:
    return item.stash.setdefault(STATE_KEY, TestState())


def _attach(item: pytest.Item, name: str, text: str) -> None:
    """Store one piece of evidence for the item (redacted; once per content)."""
    reporter = item.config.stash.get(REPORTER_KEY, None)
    if reporter is not None:
        ref = reporter.add_evidence(name, text)
    else:
        clean = redact(text)
        ref = EvidenceRef(name, "", len(clean), clean)
    _state(item).evidence.append(ref)


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """Attach a named piece of evidence (redacted, stored once, linked from every report)."""
    def attach(name: str, text: str) -> None:
        _attach(request.node, name, text)
    return attach


@pytest.fixture
def verdict(request: pytest.FixtureRequest) -> Callable[[Evaluation], None]:
    """The verdict helper: records the evaluation and ends the test by it. A pass returns; a
    failure fails with the requirement's message (or is waived); skipped and inconclusive end the
    test as such."""
    def conclude(evaluation: Evaluation) -> None:
        item, state = request.node, _state(request.node)
        if state.evaluation is not None:
            raise RuntimeError("the verdict helper was called twice in one test")
        state.evaluation = evaluation
        if evaluation.evidence:
            _attach(item, evaluation.evidence_name, evaluation.evidence)
        if evaluation.outcome is Outcome.PASSED:
            return
        if evaluation.outcome is Outcome.FAILED:
            _end_failure(item, state, evaluation)
        raise VerdictEnded(evaluation.outcome, evaluation.message)
    return conclude


def _end_failure(item: pytest.Item, state: TestState, evaluation: Evaluation) -> None:
    """A failure is waived while a waiver covers it; otherwise it fails the test."""
    audit = item.config.stash.get(CONFIG_KEY, None)
    requirement, server, variant = _requirement(item) or "", _server(item), _variant(item)
    today = dt.date.today()
    for waiver in audit.waivers if audit else ():
        if waiver.covers(requirement, server, variant, today):
            state.waiver = waiver
            raise VerdictEnded(Outcome.WAIVED, f"waived until {waiver.expires}: {waiver.reason} — {evaluation.message}")
        if waiver.covers(requirement, server, variant, waiver.expires):
            state.lapsed_waiver = waiver
    raise VerdictFailed(evaluation.message)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Past the run's deadline, nothing more is probed: the test is an error saying so."""
    reporter = item.config.stash.get(REPORTER_KEY, None)
    if reporter is not None and _requirement(item):
        reporter.check_deadline()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Turn the phase that decided a requirement test into its one record (see outcomes.py)."""
    report: pytest.TestReport = yield
    requirement = _requirement(item)
    if requirement is None:
        return report
    state = _state(item)
    judged = state.evaluation.outcome if state.evaluation else None
    exc = call.excinfo.value if call.excinfo is not None else None
    decision = decide(call.when, exc, judged, state.evaluation.message if state.evaluation else "")
    if decision is None or (state.record is not None and decision.outcome is not Outcome.ERROR):
        return report
    for name, text in decision.evidence:
        _attach(item, name, text)
    apply_to_report(report, decision, _server(item), _location(item) if decision.skip_like else ("", 0))
    state.record = _record(item, requirement, decision, state)
    state.evaluation, state.evidence = None, []  # the record holds what is kept (memory flat over a fleet)
    report.mailaudit = state.record
    properties = [(key, state.record[key]) for key in ("requirement", "server", "variant", "severity", "outcome",
                                                         "message")]
    item.user_properties[:] = [p for p in item.user_properties if p[0] not in dict(properties)] + properties
    report.user_properties = list(item.user_properties)
    _add_html_extras(item, report, state)
    return report


def _record(item: pytest.Item, requirement: str, decision: Decision, state: TestState) -> dict[str, Any]:
    """The results record of one verdict: what was judged, with the catalog's words and the evidence."""
    catalog = load_catalog()[requirement]
    evaluation = state.evaluation
    judged_here = evaluation is not None and decision.outcome is not Outcome.ERROR
    severity = (evaluation.severity if judged_here and evaluation.severity else None) or catalog.severity
    record: dict[str, Any] = {
        "requirement": requirement,
        "server": _server(item),
        "variant": _variant(item),
        "outcome": decision.outcome.value,
        "severity": severity,
        "message": redact(decision.message),
        "nodeid": item.nodeid,
        **catalog_fields(catalog),
        "evidence": [ref.as_dict() for ref in state.evidence],
        "policy": _policy_leaves(item, evaluation.policy_keys if judged_here else ()),
        "basis": evaluation.basis if judged_here else "",
        "internal_error": decision.internal,
    }
    if state.waiver is not None and decision.outcome is Outcome.WAIVED:
        record["waiver"] = _waiver_dict(state.waiver)
    if state.lapsed_waiver is not None and decision.outcome is Outcome.FAILED:
        record["lapsed_waiver"] = _waiver_dict(state.lapsed_waiver)
    return record


def _waiver_dict(waiver: Waiver) -> dict[str, str]:
    return {"requirement": waiver.requirement, "server": waiver.server, "variant": waiver.variant,
            "reason": waiver.reason, "expires": waiver.expires.isoformat()}


def _policy_leaves(item: pytest.Item, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """The policy leaves that decided a verdict, with their values and cited sources."""
    audit = item.config.stash.get(CONFIG_KEY, None)
    if audit is None:
        return []
    return [{"key": key, "value": _plain(audit.policy.value_of(key)), "source": audit.policy.source_of(key)}
            for key in keys]


def _plain(value: Any) -> Any:
    """A policy value as JSON data (records such as IDS rule limits become mappings)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _add_html_extras(item: pytest.Item, report: pytest.TestReport, state: TestState) -> None:
    """pytest-html: a link per evidence file (small pieces are also shown in the row's log by the
    reporter's ``pytest_html_results_table_html``)."""
    reporter = item.config.stash.get(REPORTER_KEY, None)
    if reporter is None:
        return
    try:
        from pytest_html import extras
    except ImportError:
        return
    links = [extras.url(reporter.link(ref, reporter.paths.html), name=f"evidence: {ref.name}")
             for ref in state.evidence if ref.file]
    report.extras = [*getattr(report, "extras", []), *links]


# The terminal's category, letter and word per outcome (pytest's own for its four).
_TERMINAL = {
    Outcome.PASSED.value: ("passed", ".", "PASSED"),
    Outcome.FAILED.value: ("failed", "F", "FAILED"),
    Outcome.ERROR.value: ("error", "E", "ERROR"),
    Outcome.SKIPPED.value: ("skipped", "s", "SKIPPED"),
    Outcome.INCONCLUSIVE.value: ("inconclusive", "I", "INCONCLUSIVE"),
    Outcome.WAIVED.value: ("waived", "W", "WAIVED"),
}


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):
    """Name the suite's own outcomes in the terminal (``3 inconclusive, 1 waived``); with ``-q``
    (cron) print no per-test letters: the per-server lines at the end say it all."""
    outcome = (getattr(report, "mailaudit", None) or {}).get("outcome")
    if outcome is None:
        return None
    category, letter, word = _TERMINAL[outcome]
    if config.get_verbosity() < 0 and CONFIG_KEY in config.stash:
        return category, "", ""
    if outcome in (Outcome.INCONCLUSIVE.value, Outcome.WAIVED.value):
        return category, letter, word
    return None


def _location(item: pytest.Item) -> tuple[str, int]:
    """Where a skipped test stands (file, 1-based line), for pytest's skip report."""
    path, line, _ = item.reportinfo()
    return str(path), (line or 0) + 1


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
