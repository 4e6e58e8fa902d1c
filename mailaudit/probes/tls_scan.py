"""The TLS scan of every (server, port), all servers at once, each within its connection limits.

Per port: the pre-flight (tls_preflight.py), then the lean enumeration (tls_suites.py: one version
check per suite group, elimination for the groups a server accepts, one enumeration for the ports
of a server that present the same TLS stack), then sslyze's other scan commands (certificate,
vulnerabilities) run from sslyze's own scan jobs against the connectivity sslyze's test would have
found. A port whose pre-flight handshake failed, whose version checks completed no handshake, or
which asks for a client certificate, gets sslyze's full scan instead (its connectivity test, then
every suite on its own connection). Every
connection is a job of one ``JobRunner`` (tls_runner.py): per-server and global limits, pre-flight
included. Scan commands that failed get one more run (``command_retries``). Each port's raw sslyze
objects are summarised into a ``TlsScan`` as soon as it is done and then dropped.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from traceback import TracebackException
from uuid import uuid4

from nassl.ssl_client import ClientCertificateRequested
from sslyze import (
    CertificateInfoExtraArgument,
    ScanCommand,
    ScanCommandAttemptStatusEnum,
    ScanCommandErrorReasonEnum,
    ServerNetworkConfiguration,
    ServerNetworkLocation,
    ServerScanResult,
)
from sslyze.errors import (
    ConnectionToServerFailed,
    ConnectionToServerTimedOut,
    ServerRejectedTlsHandshake,
    ServerTlsConfigurationNotSupported,
    TlsHandshakeTimedOut,
)
from sslyze.plugins.openssl_cipher_suites._test_cipher_suite import connect_with_cipher_suite
from sslyze.plugins.plugin_base import ScanCommandWrongUsageError, ScanJobResult
from sslyze.plugins.scan_commands import ScanCommandsRepository
from sslyze.scanner.models import (
    AllScanCommandsAttempts,
    ServerConnectivityStatusEnum,
    ServerScanStatusEnum,
    get_scan_command_attempt_cls,
)
from sslyze.server_connectivity import (
    ClientAuthRequirementEnum,
    ServerConnectivityInfo,
    ServerTlsProbingResult,
    TlsVersionEnum,
    check_connectivity_to_server,
)

from mailaudit.probes.smtp import EHLO_NAME
from mailaudit.probes.tls import (
    SSLYZE_STARTTLS,
    VERSION_COMMANDS,
    VULNERABILITY_COMMANDS,
    ScanSettings,
    TlsEndpoint,
    TlsScan,
    TrustStoreLoader,
    summarise,
    trust_store,
)
from mailaudit.probes.tls_preflight import PortState, Preflight, preflight
from mailaudit.probes.tls_runner import Batch, ConnectionLimits, JobRunner
from mailaudit.probes.tls_suites import (
    Answer,
    AnswerKind,
    Check,
    Elimination,
    Fingerprint,
    Phase,
    fingerprint,
    handshake,
    leaders,
    offerable_count,
    probing_result,
    suite_groups,
    verification_checks,
    version_result,
)

VERSION_SET = frozenset(VERSION_COMMANDS.values())
ALL_COMMANDS = frozenset({ScanCommand.CERTIFICATE_INFO, *VULNERABILITY_COMMANDS, *VERSION_SET})
COMMAND_OF_VERSION = {command: version for version, command in VERSION_COMMANDS.items()}
_PYTHON_VERSIONS = {"TLSv1": "TLSv1.0"}  # ssl.SSLSocket.version() names TLS 1.0 so


def scan_endpoints(endpoints: Iterable[TlsEndpoint], settings: ScanSettings,
                   runner: JobRunner | None = None) -> dict[TlsEndpoint, TlsScan]:
    """Scan every endpoint (servers at once), within the connection limits of ``runner`` (the
    run's, shared by every server's scan; a new one from ``settings`` if None) and one deadline
    (``settings.deadline_s`` from the first connection). Never raises for what a server does (its
    ports' scans say it); a bug of ours propagates."""
    endpoints = tuple(dict.fromkeys(endpoints))
    if not endpoints:
        return {}
    runner = runner or JobRunner(connection_limits(settings))
    suite_groups()  # made once, here, before the jobs that read it start
    batch = runner.batch(settings.deadline_s, grace_s=4 * settings.timeout_s)
    trust = trust_store(settings.ca_file)
    by_server: dict[tuple[str, str], list[TlsEndpoint]] = {}
    for endpoint in endpoints:
        by_server.setdefault((endpoint.host, endpoint.ip), []).append(endpoint)
    servers = [_ServerScan(_Context(batch, settings, trust), ports) for ports in by_server.values()]
    for server in servers:
        server.start()
    batch.wait()
    scans = {e: scan for server in servers for e, scan in server.results().items()}
    return {e: scans[e] for e in endpoints}


def connection_limits(settings: ScanSettings) -> ConnectionLimits:
    """The connection limits the settings (the policy) ask for."""
    return ConnectionLimits(per_server=settings.max_connections_per_server, total=settings.max_connections_total,
                            per_port=settings.connections_per_port, ports_per_server=settings.concurrent_ports)


def sslyze_target(endpoint: TlsEndpoint, settings: ScanSettings
                  ) -> tuple[ServerNetworkLocation, ServerNetworkConfiguration]:
    """How sslyze reaches the endpoint: by IP, SNI = the host name, STARTTLS where the port uses it."""
    location = ServerNetworkLocation(hostname=endpoint.host, port=endpoint.port, ip_address=endpoint.ip)
    network = ServerNetworkConfiguration(
        tls_server_name_indication=endpoint.host,
        tls_opportunistic_encryption=SSLYZE_STARTTLS.get(endpoint.starttls or ""),
        smtp_ehlo_hostname=EHLO_NAME if endpoint.starttls == "smtp" else None,
        network_timeout=settings.timeout_s,
        network_max_retries=settings.retries,
    )
    return location, network


@dataclass(frozen=True)
class _Context:
    batch: Batch
    settings: ScanSettings
    trust: TrustStoreLoader


class _ServerScan:
    """The ports of one (name, address): after every port's version checks, who enumerates and who
    adopts whose enumeration is decided in port order (so reports do not change from run to run)."""

    def __init__(self, context: _Context, endpoints: list[TlsEndpoint]) -> None:
        self.ports = [_PortScan(context, self, e) for e in endpoints]
        self._lock = threading.Lock()
        self._ready = 0

    def start(self) -> None:
        """Start every port's pre-flight."""
        for port in self.ports:
            port.start()

    def port_ready(self) -> None:
        """One port has its version checks (or needs none); the last one decides for all."""
        with self._lock:
            self._ready += 1
            if self._ready < len(self.ports):
                return
        prints = [(p.endpoint.port, p.fingerprint()) for p in self.ports]
        follows = leaders(prints)
        seen = Counter(print_ for _, print_ in prints if print_ is not None)
        for port, (_, print_) in zip(self.ports, prints, strict=True):
            if print_ is not None and seen[print_] > 1:
                port.corroborate()  # its refusals by a closed connection were seen on another port too
        by_port = {p.endpoint.port: p for p in self.ports}
        for port in self.ports:
            if not port.lean:
                continue
            leader = follows.get(port.endpoint.port)
            if leader is None:
                port.enumerate()
            else:
                by_port[leader].when_enumerated(port.follow)

    def results(self) -> dict[TlsEndpoint, TlsScan]:
        """Every port's scan (an unfinished one says why)."""
        return {p.endpoint: p.result() for p in self.ports}


@dataclass
class _Enumeration:
    """A set of groups being enumerated together, and what to do once all are finished."""

    groups: dict[str, Elimination]
    on_done: Callable[[], None]
    done: bool = False


@dataclass
class _Pass:
    """The commands of one run over sslyze's scan jobs that are not finished yet."""

    info: ServerConnectivityInfo
    open: set[ScanCommand]
    results: dict[ScanCommand, list[ScanJobResult]] = field(default_factory=dict)
    expected: dict[ScanCommand, int] = field(default_factory=dict)


class _PortScan:
    """One port's scan, driven by the answers of its jobs (each job opens one connection at a time)."""

    def __init__(self, context: _Context, server: _ServerScan, endpoint: TlsEndpoint) -> None:
        self.context, self.server, self.endpoint = context, server, endpoint
        self.location, self.network = sslyze_target(endpoint, context.settings)
        self.lock = threading.Lock()
        self.check: Preflight | None = None
        self.lean = False  # True: version checks and elimination; False: sslyze's full scan (or none)
        self.checked = False  # every version check has its answer
        self.eliminations: dict[str, Elimination] = {}
        self.enumerated = False  # the eliminations are final (followers may read them)
        self.followers: list[Callable[[_PortScan], None]] = []
        self.attempts: dict[ScanCommand, object] = {}
        self.probing: ServerTlsProbingResult | None = None
        self.conn_error: tuple[str, TracebackException] | None = None
        self.note = ""
        self.full_scan_reason = ""
        self.retries_left = context.settings.command_retries
        self.retried: set[ScanCommand] = set()
        self.started = 0.0
        self.scan: TlsScan | None = None

    def _submit(self, work: Callable[[], None]) -> None:
        self.context.batch.submit(self.endpoint.ip, self.endpoint.port, work)

    def _expired(self) -> bool:
        return self.context.batch.expired()

    # --- pre-flight and version checks -----------------------------------------------------------

    def start(self) -> None:
        """Queue the pre-flight."""
        self._submit(self._preflight)

    def _preflight(self) -> None:
        self.started = time.monotonic()
        e = self.endpoint
        self.check = preflight(e.ip, e.port, e.host, e.starttls, self.context.settings.timeout_s)
        if self.check.state is PortState.OPEN:
            self.lean = True
            self.eliminations = {g.key: Elimination(g) for g in suite_groups()}
            for elimination in self.eliminations.values():
                self._ask(elimination, self._version_checked)
            return
        self.server.port_ready()
        if self.check.state is PortState.HANDSHAKE_FAILED:
            self._full_sslyze_scan("the pre-flight handshake failed")
        else:
            self._finish()

    def _ask(self, elimination: Elimination, then: Callable[[], None]) -> None:
        """One ClientHello with the group's next offer; ``then()`` runs after its answer is in."""
        suites = elimination.offer()

        def work() -> None:
            answer = handshake(self.location, self.network, elimination.group, suites)
            with self.lock:
                elimination.record(suites, answer)
            then()
        self._submit(work)

    def _version_checked(self) -> None:
        with self.lock:
            if self.checked or any(not e.rounds for e in self.eliminations.values()):
                return
            self.checked = True  # the last answer's thread goes on; the others have nothing to do
            answers = [e.first.kind for e in self.eliminations.values()]
            why = ""
            if AnswerKind.CLIENT_AUTH in answers:
                why = "the server asked for a client certificate"
            elif AnswerKind.ACCEPTED not in answers:
                why = "no version check completed a handshake"
            if why:
                self.lean = False
            else:
                self._cross_check()
        self.server.port_ready()
        if why:
            self._full_sslyze_scan(why)

    def _cross_check(self) -> None:
        """The pre-flight (Python's OpenSSL) completed a version whose every group refused the full
        ClientHello: a server intolerant of long ClientHellos, so those groups go one suite at a time."""
        words = (self.check.negotiated if self.check else "").split(" ")
        version = _PYTHON_VERSIONS.get(words[0], words[0])
        groups = [e for e in self.eliminations.values() if e.group.version == version]
        if groups and all(e.first.kind is AnswerKind.REJECTED for e in groups):
            for elimination in groups:
                elimination.remaining = list(elimination.group.suites)
                elimination.rejected.clear()
                elimination.go_one_by_one(f"the pre-flight completed {version}, but the ClientHello with every "
                                          f"suite was refused")

    def corroborate(self) -> None:
        """Another port of the server gave every same answer: its refusals stand without a repeat."""
        with self.lock:
            for elimination in self.eliminations.values():
                elimination.corroborate()

    def fingerprint(self) -> Fingerprint | None:
        """This port's fingerprint (None: it neither leads nor follows)."""
        with self.lock:
            if not self.lean or any(e.unclear or e.phase is Phase.FAILED for e in self.eliminations.values()):
                return None
            return fingerprint(self.check.negotiated if self.check else "", self.eliminations)

    # --- enumeration -----------------------------------------------------------------------------

    def enumerate(self) -> None:
        """Enumerate every group here, from its version check on."""
        with self.lock:
            run = _Enumeration(dict(self.eliminations), self._enumeration_done)
        for elimination in run.groups.values():
            self._advance(run, elimination)

    def _advance(self, run: _Enumeration, elimination: Elimination) -> None:
        """The next step of one group: its next ClientHello, its one-by-one tests, or the end."""
        with self.lock:
            ask = bool(elimination.offer())
            singles = elimination.phase is Phase.ONE_BY_ONE and not elimination.single_tests_started
            if singles:
                elimination.single_tests_started = True
            finished = not run.done and all(e.finished for e in run.groups.values())
            if finished:
                run.done = True
        if ask:
            self._ask(elimination, lambda: self._advance(run, elimination))
        elif singles:
            for suite in list(elimination.remaining):
                self._submit(self._single_test(run, elimination, suite))
        elif finished:
            run.on_done()

    def _single_test(self, run: _Enumeration, elimination: Elimination, suite) -> Callable[[], None]:
        def work() -> None:
            outcome = _sslyze_call(connect_with_cipher_suite, self._connectivity(), elimination.group.tls_version,
                                   suite)
            with self.lock:
                elimination.record_single(suite, outcome.result, outcome.error)
            self._advance(run, elimination)
        return work

    def _connectivity(self) -> ServerConnectivityInfo:
        """What sslyze's plugins read about the server (its one-suite test reads only the
        client-certificate requirement: it sets version and client itself)."""
        probing = self.probing or ServerTlsProbingResult(TlsVersionEnum.TLS_1_2, "", ClientAuthRequirementEnum.DISABLED,
                                                         False)
        return ServerConnectivityInfo(server_location=self.location, network_configuration=self.network,
                                      tls_probing_result=probing)

    def _enumeration_done(self) -> None:
        with self.lock:
            self.enumerated = True
            followers, self.followers = self.followers, []
        self.note = self._elimination_note()
        for follower in followers:
            follower(self)
        self._commands(ALL_COMMANDS)

    def when_enumerated(self, follower: Callable[[_PortScan], None]) -> None:
        """Call ``follower(self)`` once this port's enumeration is final."""
        with self.lock:
            if not self.enumerated:
                self.followers.append(follower)
                return
        follower(self)

    def _elimination_note(self) -> str:
        groups = self.eliminations.values()
        rounds = sum(e.handshakes for e in groups)
        repeats = sum(e.repeats for e in groups)
        total = sum(offerable_count(v) for v in VERSION_COMMANDS)
        how = "a version check per suite group, then one per accepted suite"
        if repeats:
            how += f", and {repeats} repeated to confirm a refusal by a closed connection"
        note = (f"cipher suites enumerated on port {self.endpoint.port} by elimination: {rounds} ClientHellos "
                f"({how}) instead of {total} handshakes of one suite each")
        singles = [f"{e.group.key} one suite per connection ({e.unclear})" for e in groups if e.unclear]
        return note + "".join(f"; {s}" for s in singles)

    # --- adopting the enumeration of a port with the same stack -----------------------------------

    def follow(self, leader: _PortScan) -> None:
        """Adopt the leader's enumeration if this port answers its checks as the leader did; else
        enumerate here."""
        with leader.lock:
            theirs = dict(leader.eliminations)
        checks = verification_checks(theirs)
        if checks is None:
            self.enumerate()
            return
        answers: list[tuple[Check, Answer]] = []

        def ask(check: Check) -> Callable[[], None]:
            def work() -> None:
                answer = handshake(self.location, self.network, check.group, check.suites)
                with self.lock:
                    answers.append((check, answer))
                    complete = len(answers) == len(checks)
                if complete:
                    self._checked(leader.endpoint.port, theirs, answers)
            return work
        if not checks:
            self._checked(leader.endpoint.port, theirs, answers)
        for check in checks:
            self._submit(ask(check))

    def _checked(self, leader: int, theirs: dict[str, Elimination], answers: list[tuple[Check, Answer]]) -> None:
        if not all(check.holds(answer) for check, answer in answers):
            self.enumerate()
            return
        with self.lock:
            self.eliminations, self.enumerated = theirs, True
        compared = 1 + len(theirs) + len(answers)
        self.note = (f"cipher suites enumerated on port {leader}: port {self.endpoint.port} presents the same TLS "
                     f"stack (the same certificate chain and the same answers to {compared} handshakes: the "
                     f"pre-flight, a version check per suite group and {len(answers)} ClientHellos of port "
                     f"{leader}'s enumeration)")
        self._commands(ALL_COMMANDS)

    # --- sslyze's scan commands ------------------------------------------------------------------

    def _commands(self, commands: frozenset[ScanCommand]) -> None:
        """Version results from the finished enumeration, then the other commands' sslyze jobs."""
        with self.lock:
            if self.lean:
                for command in commands & VERSION_SET:
                    self.attempts[command] = self._version_attempt(command)
                probing = probing_result(self.eliminations)
            else:
                probing = self.probing
        if isinstance(probing, str):
            self._connectivity_failed(probing, None)
            return
        self.probing = probing
        self._run_jobs(commands - VERSION_SET if self.lean else commands)

    def _version_attempt(self, command: ScanCommand):
        version = COMMAND_OF_VERSION[command]
        groups = [e for e in self.eliminations.values() if e.group.version == version]
        failed = next((e for e in groups if e.phase is Phase.FAILED), None)
        if failed is not None:
            return attempt_for_error(command, failed.error)
        return _completed(command, version_result(version, groups))

    def _run_jobs(self, commands: frozenset[ScanCommand]) -> None:
        run = _Pass(self._connectivity(), set())
        queued: list[tuple[ScanCommand, object]] = []
        for command in sorted(commands, key=lambda c: c.value):
            implementation = ScanCommandsRepository.get_implementation_cls(command)
            jobs = _sslyze_call(implementation.scan_jobs_for_scan_command, run.info, self._extra(command))
            if jobs.error is not None:
                with self.lock:
                    self.attempts[command] = _queuing_error(command, jobs.error)
            elif not jobs.result:
                self._command_done(run, command, [])
            else:
                run.open.add(command)
                run.results[command], run.expected[command] = [], len(jobs.result)
                queued.extend((command, job) for job in jobs.result)
        if not queued:
            self._pass_done()
        for command, job in queued:
            self._submit(self._plugin_job(run, command, job))

    def _extra(self, command: ScanCommand):
        if command is ScanCommand.CERTIFICATE_INFO and self.context.settings.ca_file is not None:
            return CertificateInfoExtraArgument(custom_ca_file=self.context.settings.ca_file)
        return None

    def _plugin_job(self, run: _Pass, command: ScanCommand, job) -> Callable[[], None]:
        def work() -> None:
            outcome = _sslyze_call(job.function_to_call, *job.function_arguments)
            with self.lock:
                results = run.results[command]
                results.append(ScanJobResult(_return_value=outcome.result, _exception=outcome.error))
                complete = len(results) == run.expected[command]
            if not complete:
                return
            self._command_done(run, command, results)
            with self.lock:
                run.open.discard(command)
                last = not run.open
            if last:
                self._pass_done()
        return work

    def _command_done(self, run: _Pass, command: ScanCommand, results: list[ScanJobResult]) -> None:
        attempt = attempt_from_jobs(command, run.info, results)  # sslyze's analysis (certificates: CPU)
        with self.lock:
            self.attempts[command] = attempt

    def _pass_done(self) -> None:
        """Every command has its attempt: run the failed ones again (``command_retries``), or finish."""
        with self.lock:
            failed = frozenset(c for c, a in self.attempts.items() if a.status is ScanCommandAttemptStatusEnum.ERROR)
        if not failed or not self._may_retry(failed):
            self._finish()
            return
        versions = {COMMAND_OF_VERSION[c] for c in failed & VERSION_SET}
        if not self.lean or not versions:
            self._run_jobs(failed)
            return
        self._enumerate_again(versions, failed)

    def _may_retry(self, commands: frozenset[ScanCommand]) -> bool:
        if self.retries_left <= 0 or self._expired():
            return False
        self.retries_left -= 1
        self.retried |= commands
        return True

    def _enumerate_again(self, versions: set[str], commands: frozenset[ScanCommand]) -> None:
        fresh = {g.key: Elimination(g) for g in suite_groups() if g.version in versions}
        with self.lock:
            self.eliminations = {**self.eliminations, **fresh}
        run = _Enumeration(fresh, lambda: self._commands(commands))
        for elimination in fresh.values():
            self._ask(elimination, lambda e=elimination: self._advance(run, e))

    # --- sslyze's full scan (odd servers) ---------------------------------------------------------

    def _full_sslyze_scan(self, why: str) -> None:
        self.full_scan_reason = why
        self.note = f"every cipher suite tested on its own connection (sslyze's full scan): {why}"

        def work() -> None:
            try:
                self.probing = check_connectivity_to_server(self.location, self.network)
            except ConnectionToServerFailed as exc:
                self._connectivity_failed(exc.error_message, TracebackException.from_exception(exc))
                return
            self._run_jobs(ALL_COMMANDS)
        self._submit(work)

    def _connectivity_failed(self, message: str, trace: TracebackException | None) -> None:
        """No scan command can run: as sslyze says it when its connectivity test fails."""
        if self.check is not None and self.check.state is PortState.OPEN and self._may_retry(ALL_COMMANDS):
            if self.lean:
                self._enumerate_again(set(VERSION_COMMANDS), ALL_COMMANDS)
            else:
                self._full_sslyze_scan(self.full_scan_reason)
            return
        if trace is None:
            trace = TracebackException.from_exception(ServerTlsConfigurationNotSupported(
                server_location=self.location, network_configuration=self.network, error_message=message))
        self.conn_error = (message, trace)
        self._finish()

    # --- the result ------------------------------------------------------------------------------

    def _finish(self) -> None:
        check = self.check
        assert check is not None
        raw = self._raw_result() if check.state in (PortState.OPEN, PortState.HANDSHAKE_FAILED) else None
        scan = summarise(self.endpoint, check, raw, self.conn_error[0] if self.conn_error else None,
                         self.context.trust, time.monotonic() - self.started, self.note)
        with self.lock:
            self.scan = replace(scan, retried=tuple(sorted(c.value for c in self.retried)))
            self.attempts, self.probing, self.conn_error = {}, None, None  # the raw objects go; the summary stays

    def _raw_result(self) -> ServerScanResult:
        base = {"uuid": uuid4(), "server_location": self.location, "network_configuration": self.network}
        if self.conn_error is not None:
            return ServerScanResult(**base, connectivity_status=ServerConnectivityStatusEnum.ERROR,
                                    connectivity_error_trace=self.conn_error[1], connectivity_result=None,
                                    scan_status=ServerScanStatusEnum.ERROR_NO_CONNECTIVITY, scan_result=None)
        attempts = {}
        for item in fields(AllScanCommandsAttempts):
            command = ScanCommand(item.name)
            attempts[item.name] = self.attempts.get(command) or get_scan_command_attempt_cls(command)(
                status=ScanCommandAttemptStatusEnum.NOT_SCHEDULED, error_reason=None, error_trace=None, result=None)
        return ServerScanResult(**base, connectivity_status=ServerConnectivityStatusEnum.COMPLETED,
                                connectivity_error_trace=None, connectivity_result=self.probing,
                                scan_status=ServerScanStatusEnum.COMPLETED,
                                scan_result=AllScanCommandsAttempts(**attempts))

    def result(self) -> TlsScan:
        """The finished scan, or one that says the deadline ended it."""
        with self.lock:
            if self.scan is not None:
                return self.scan
            check = self.check
        message = self.context.batch.deadline_message(self.endpoint.ip)
        if check is None:
            return TlsScan(endpoint=self.endpoint, state=PortState.NOT_PROBED, detail=message)
        return TlsScan(endpoint=self.endpoint, state=check.state, detail=check.detail, transcript=check.transcript,
                       negotiated=check.negotiated, scan_error=message)


# --- sslyze's job contract ---------------------------------------------------------------------

@dataclass(frozen=True)
class _Outcome:
    result: object = None
    error: Exception | None = None


def _sslyze_call(function: Callable, *args) -> _Outcome:
    """Call one of sslyze's scan functions the way sslyze's own job runner does: whatever the
    function raises is the outcome of that job (sslyze turns it into the command's error: a
    connection problem, a client certificate request, or sslyze's own bug), never a crash of the
    scan. Only sslyze's code runs inside."""
    try:
        return _Outcome(result=function(*args))
    except Exception as exc:  # sslyze's ScanJobResult contract: the job's exception is its result
        return _Outcome(error=exc)


def _completed(command: ScanCommand, result):
    return get_scan_command_attempt_cls(command)(status=ScanCommandAttemptStatusEnum.COMPLETED, error_reason=None,
                                                 error_trace=None, result=result)


def _queuing_error(command: ScanCommand, error: Exception):
    reason = (ScanCommandErrorReasonEnum.WRONG_USAGE if isinstance(error, ScanCommandWrongUsageError)
              else ScanCommandErrorReasonEnum.BUG_IN_SSLYZE)
    return get_scan_command_attempt_cls(command)(status=ScanCommandAttemptStatusEnum.ERROR, error_reason=reason,
                                                 error_trace=TracebackException.from_exception(error), result=None)


def attempt_for_error(command: ScanCommand, error: Exception | None):
    """The ERROR attempt sslyze records for a command whose job raised ``error``."""
    if isinstance(error, ClientCertificateRequested):
        reason = ScanCommandErrorReasonEnum.CLIENT_CERTIFICATE_NEEDED
    elif isinstance(error, (ConnectionToServerTimedOut, TlsHandshakeTimedOut, ServerRejectedTlsHandshake)):
        reason = ScanCommandErrorReasonEnum.CONNECTIVITY_ISSUE
    else:
        reason = ScanCommandErrorReasonEnum.BUG_IN_SSLYZE
    trace = TracebackException.from_exception(error) if error is not None else None
    return get_scan_command_attempt_cls(command)(status=ScanCommandAttemptStatusEnum.ERROR, error_reason=reason,
                                                 error_trace=trace, result=None)


def attempt_from_jobs(command: ScanCommand, info: ServerConnectivityInfo, results: list[ScanJobResult]):
    """sslyze's attempt for a command from its finished jobs (as sslyze's scanner builds it)."""
    implementation = ScanCommandsRepository.get_implementation_cls(command)
    outcome = _sslyze_call(implementation.result_for_completed_scan_jobs, info, results)
    if outcome.error is not None:
        return attempt_for_error(command, outcome.error)
    return _completed(command, outcome.result)
