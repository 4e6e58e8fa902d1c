"""TLS probes: one sslyze scan per (server, port), every port of every server in one Scanner.

Each port first gets a short pre-flight (tls_preflight.py: TCP, STARTTLS dialogue, one handshake)
so that a closed port, a missing STARTTLS, a port that speaks no TLS and a silent port are told
apart with one plain line. The ports that speak TLS are then queued together in one sslyze
``Scanner`` with every scan command the TLS requirements need, addressed by IP (the suite resolves
names itself) with SNI = the host name. Results become frozen summaries (``TlsScan``); a scan
command that errored is recorded by name, so only the requirements depending on it become errors.
Network I/O only; no pytest.
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import threading
import time
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from ipaddress import ip_address
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtensionOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from sslyze import (
    CertificateInfoExtraArgument,
    ProtocolWithOpportunisticTlsEnum,
    ScanCommand,
    ScanCommandAttemptStatusEnum,
    ScanCommandsExtraArguments,
    Scanner,
    ServerNetworkConfiguration,
    ServerNetworkLocation,
    ServerScanRequest,
    ServerScanResult,
    ServerScanResultAsJson,
)
from sslyze.errors import ConnectionToServerFailed
from sslyze.scanner.scanner_observer import ScannerObserver

from mailaudit.probes.smtp import EHLO_NAME
from mailaudit.probes.tls_preflight import PortState, Preflight, preflight

VERSION_COMMANDS: dict[str, ScanCommand] = {
    "SSLv2": ScanCommand.SSL_2_0_CIPHER_SUITES,
    "SSLv3": ScanCommand.SSL_3_0_CIPHER_SUITES,
    "TLSv1.0": ScanCommand.TLS_1_0_CIPHER_SUITES,
    "TLSv1.1": ScanCommand.TLS_1_1_CIPHER_SUITES,
    "TLSv1.2": ScanCommand.TLS_1_2_CIPHER_SUITES,
    "TLSv1.3": ScanCommand.TLS_1_3_CIPHER_SUITES,
}
VULNERABILITY_COMMANDS = (
    ScanCommand.HEARTBLEED,
    ScanCommand.ROBOT,
    ScanCommand.OPENSSL_CCS_INJECTION,
    ScanCommand.SESSION_RENEGOTIATION,
    ScanCommand.TLS_COMPRESSION,
    ScanCommand.TLS_FALLBACK_SCSV,
)
SCAN_COMMANDS = frozenset({ScanCommand.CERTIFICATE_INFO, *VERSION_COMMANDS.values(), *VULNERABILITY_COMMANDS})
_SSLYZE_STARTTLS = {
    "smtp": ProtocolWithOpportunisticTlsEnum.SMTP,
    "imap": ProtocolWithOpportunisticTlsEnum.IMAP,
    "pop3": ProtocolWithOpportunisticTlsEnum.POP3,
}
TIMEOUT_REJECTION = "timed out"


# --- what is scanned -------------------------------------------------------------------------------

@dataclass(frozen=True)
class TlsEndpoint:
    """One (server, port) to scan: the name (SNI, certificate name), the address, how TLS starts."""

    host: str
    ip: str
    port: int
    service: str
    starttls: str | None = None  # "smtp", "imap", "pop3"; None = implicit TLS

    @property
    def label(self) -> str:
        """``mail.example.com:25`` — how messages name the port."""
        return f"{self.host}:{self.port}"

    @property
    def how(self) -> str:
        """``STARTTLS (smtp)`` or ``implicit TLS``."""
        return f"STARTTLS ({self.starttls})" if self.starttls else "implicit TLS"


@dataclass(frozen=True)
class ScanSettings:
    """Limits for one scan session (from the policy) and the trust store to validate against."""

    timeout_s: int = 5
    retries: int = 2
    connections_per_port: int = 5
    concurrent_ports: int = 10
    deadline_s: int = 600
    max_connections_per_server: int = 20  # pre-flight connections at once (sslyze's burst is checked by the policy)
    command_retries: int = 1  # scan commands that failed (connection lost, timeout) are run again this often
    ca_file: Path | None = None  # None: the system's trust store


# --- what was found --------------------------------------------------------------------------------

@dataclass(frozen=True)
class SuiteInfo:
    """One accepted cipher suite (IANA name) and what the handshake used with it."""

    name: str
    key_size: int
    anonymous: bool
    ephemeral_key: str = ""  # e.g. "ECDH X25519 253 bits", "DH 2048 bits"; "" for static RSA


@dataclass(frozen=True)
class VersionResult:
    """The result of one protocol version's cipher-suite scan."""

    version: str
    accepted: tuple[SuiteInfo, ...]
    rejected_count: int
    undecided: bool = False  # nothing accepted and every rejection was a timeout: refusal not proven

    @property
    def supported(self) -> bool:
        """At least one suite was accepted."""
        return bool(self.accepted)


@dataclass(frozen=True)
class TrustResult:
    """Whether the received chain validates against the configured trust store."""

    trusted: bool | None  # None: could not be decided (no trust store)
    store: str
    detail: str


@dataclass(frozen=True)
class CertificateSummary:
    """The leaf certificate of one deployment, with the chain's signature hashes and its trust."""

    subject: str
    issuer: str
    san_dns: tuple[str, ...]
    san_ip: tuple[str, ...]
    common_names: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    key_type: str  # RSA, EC, Ed25519, Ed448, DSA
    key_bits: int
    signature_hashes: tuple[tuple[str, str], ...]  # (certificate subject, hash name) leaf first, no roots
    self_signed: bool
    sha256: str
    chain_length: int
    trust: TrustResult


@dataclass(frozen=True)
class VulnerabilityResults:
    """The vulnerability scan commands' answers; None where the command errored."""

    heartbleed: bool | None = None
    ccs_injection: bool | None = None
    robot: str | None = None  # sslyze's RobotScanResultEnum value
    secure_renegotiation: bool | None = None
    client_renegotiation_dos: bool | None = None
    compression: bool | None = None
    fallback_scsv: bool | None = None


@dataclass(frozen=True)
class TlsScan:
    """Everything observed on one (server, port): pre-flight, versions, suites, certificates, vulns."""

    endpoint: TlsEndpoint
    state: PortState
    detail: str
    transcript: str = ""
    negotiated: str = ""
    scanned_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    duration_s: float = 0.0
    scan_error: str | None = None  # sslyze could not scan at all (connectivity, deadline)
    versions: tuple[VersionResult, ...] = ()
    certificates: tuple[CertificateSummary, ...] = ()
    vulnerabilities: VulnerabilityResults = VulnerabilityResults()
    errors: tuple[tuple[str, str], ...] = ()  # (scan command, one plain line)
    retried: tuple[str, ...] = ()  # scan commands that failed once and were run again
    sslyze_json: str = ""

    def version(self, name: str) -> VersionResult | None:
        """The result for ``TLSv1.0`` etc., or None if that scan command errored or did not run."""
        return next((v for v in self.versions if v.version == name), None)

    def error(self, command: str) -> str | None:
        """The one-line error of a scan command (sslyze name, e.g. ``tls_1_0_cipher_suites``)."""
        return dict(self.errors).get(command)

    @property
    def accepted_versions(self) -> tuple[str, ...]:
        """Versions with at least one accepted suite, oldest first."""
        return tuple(v.version for v in self.versions if v.supported)


# --- ports -----------------------------------------------------------------------------------------

def endpoints_for(servers: Iterable[tuple[str, str]], ports: Iterable[tuple[int, str, str | None]]
                  ) -> tuple[TlsEndpoint, ...]:
    """Every (host, ip) × (port, service, starttls) pair, in order."""
    port_list = tuple(ports)
    return tuple(TlsEndpoint(host, ip, port, service, starttls)
                 for host, ip in servers for port, service, starttls in port_list)


# --- the scan --------------------------------------------------------------------------------------

def scan_endpoints(endpoints: Iterable[TlsEndpoint], settings: ScanSettings) -> dict[TlsEndpoint, TlsScan]:
    """Pre-flight every endpoint, then scan every one that speaks TLS in one sslyze Scanner; scan
    commands that failed on a lost connection or a timeout get another run (``command_retries``)."""
    endpoints = tuple(dict.fromkeys(endpoints))
    if not endpoints:
        return {}
    started = time.monotonic()
    checks = _preflight_all(endpoints, settings)
    jobs = {e: SCAN_COMMANDS for e in endpoints if checks[e].state in (PortState.OPEN, PortState.HANDSHAKE_FAILED)}
    passes = _SslyzePasses(settings, started)
    passes.run(jobs)
    for _ in range(settings.command_retries):
        if not passes.retry({e: failed for e in jobs if (failed := _failed_commands(passes.raw.get(e), checks[e]))}):
            break
    trust = TrustStoreLoader(settings.ca_file)
    elapsed = time.monotonic() - started
    return {e: replace(_summarise(e, checks[e], passes.raw.get(e), passes.conn_errors.get(e), passes.finished,
                                  trust, elapsed, settings),
                       retried=tuple(sorted(c.value for c in passes.retried.get(e, ()))))
            for e in endpoints}


@dataclass
class _SslyzePasses:
    """The sslyze results of a scan session: the first pass, then retries of what failed."""

    settings: ScanSettings
    started: float
    raw: dict[TlsEndpoint, ServerScanResult] = field(default_factory=dict)
    conn_errors: dict[TlsEndpoint, str] = field(default_factory=dict)
    retried: dict[TlsEndpoint, frozenset[ScanCommand]] = field(default_factory=dict)
    finished: bool = True

    def _left(self) -> float:
        return self.settings.deadline_s - (time.monotonic() - self.started)

    def run(self, jobs: dict[TlsEndpoint, frozenset[ScanCommand]]) -> None:
        """The first pass: every endpoint, every command, one Scanner."""
        self.raw, self.conn_errors, self.finished = _run_sslyze(jobs, self.settings, self._left())

    def retry(self, again: dict[TlsEndpoint, frozenset[ScanCommand]]) -> bool:
        """Run the failed commands again and merge what completed; False if there was nothing to do."""
        if not again or not self.finished or self._left() <= 0:
            return False
        more, conn_errors, self.finished = _run_sslyze(again, self.settings, self._left())
        for endpoint, result in more.items():
            self.raw[endpoint] = _merge(self.raw.get(endpoint), result, again[endpoint])
            self.retried[endpoint] = self.retried.get(endpoint, frozenset()) | again[endpoint]
        for endpoint, message in conn_errors.items():
            if self.raw.get(endpoint) is None or self.raw[endpoint].scan_result is None:
                self.conn_errors[endpoint] = message
        return True


def _failed_commands(result: ServerScanResult | None, check: Preflight) -> frozenset[ScanCommand]:
    """The commands worth another run: all of them if sslyze could not connect to a port the
    pre-flight reached, else those that ended in an error."""
    if result is None or result.scan_result is None:
        return SCAN_COMMANDS if check.state is PortState.OPEN else frozenset()
    return frozenset(c for c in SCAN_COMMANDS
                     if getattr(result.scan_result, c.value).status is ScanCommandAttemptStatusEnum.ERROR)


def _merge(first: ServerScanResult | None, retry: ServerScanResult, commands: frozenset[ScanCommand]
           ) -> ServerScanResult:
    """The first result with every command the retry completed replaced by the retry's attempt."""
    if first is None or first.scan_result is None:
        return retry
    if retry.scan_result is None:
        return first
    fixed = {c.value: getattr(retry.scan_result, c.value) for c in commands
             if getattr(retry.scan_result, c.value).status is ScanCommandAttemptStatusEnum.COMPLETED}
    return replace(first, scan_result=replace(first.scan_result, **fixed))


def _preflight_all(endpoints: tuple[TlsEndpoint, ...], settings: ScanSettings) -> dict[TlsEndpoint, Preflight]:
    workers = max(1, min(settings.max_connections_per_server, len(endpoints)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tls-preflight") as pool:
        futures = {e: pool.submit(preflight, e.ip, e.port, e.host, e.starttls, settings.timeout_s)
                   for e in endpoints}
        return {e: f.result() for e, f in futures.items()}


class _ErrorObserver(ScannerObserver):
    """Keeps each connectivity exception (sslyze only keeps a traceback in its result)."""

    def __init__(self) -> None:
        self.errors: dict[object, ConnectionToServerFailed] = {}

    def server_connectivity_test_error(self, server_scan_request, connectivity_error) -> None:
        self.errors[server_scan_request.uuid] = connectivity_error

    def server_connectivity_test_completed(self, server_scan_request, connectivity_result) -> None:
        return None

    def server_scan_completed(self, server_scan_result) -> None:
        return None

    def all_server_scans_completed(self) -> None:
        return None


def _request(endpoint: TlsEndpoint, settings: ScanSettings, commands: frozenset[ScanCommand]) -> ServerScanRequest:
    location = ServerNetworkLocation(hostname=endpoint.host, port=endpoint.port, ip_address=endpoint.ip)
    network = ServerNetworkConfiguration(
        tls_server_name_indication=endpoint.host,
        tls_opportunistic_encryption=_SSLYZE_STARTTLS.get(endpoint.starttls or ""),
        smtp_ehlo_hostname=EHLO_NAME if endpoint.starttls == "smtp" else None,
        network_timeout=settings.timeout_s,
        network_max_retries=settings.retries,
    )
    with_ca = settings.ca_file is not None and ScanCommand.CERTIFICATE_INFO in commands
    extra = ScanCommandsExtraArguments(
        certificate_info=CertificateInfoExtraArgument(custom_ca_file=settings.ca_file) if with_ca else None)
    return ServerScanRequest(server_location=location, network_configuration=network,
                             scan_commands=set(commands), scan_commands_extra_arguments=extra)


def _run_sslyze(jobs: dict[TlsEndpoint, frozenset[ScanCommand]], settings: ScanSettings, deadline_s: float
                ) -> tuple[dict[TlsEndpoint, ServerScanResult], dict[TlsEndpoint, str], bool]:
    """All endpoints in one Scanner, results collected in a thread so the deadline holds."""
    if not jobs:
        return {}, {}, True
    requests = [(_request(e, settings, commands), e) for e, commands in jobs.items()]
    by_uuid = {r.uuid: e for r, e in requests}
    observer = _ErrorObserver()
    scanner = Scanner(per_server_concurrent_connections_limit=settings.connections_per_port,
                      concurrent_server_scans_limit=settings.concurrent_ports, observers=[observer])
    scanner.queue_scans([r for r, _ in requests])
    results: dict[TlsEndpoint, ServerScanResult] = {}

    def collect() -> None:
        for result in scanner.get_results():
            results[by_uuid[result.uuid]] = result

    worker = threading.Thread(target=collect, name="tls-sslyze", daemon=True)
    worker.start()
    worker.join(deadline_s)
    conn_errors = {by_uuid[u]: exc.error_message for u, exc in observer.errors.items()}
    return dict(results), conn_errors, not worker.is_alive()


# --- turning sslyze's result into a summary --------------------------------------------------------

def _summarise(endpoint: TlsEndpoint, check: Preflight, result: ServerScanResult | None, conn_error: str | None,
               finished: bool, trust: TrustStoreLoader, elapsed: float, settings: ScanSettings) -> TlsScan:
    base = TlsScan(endpoint=endpoint, state=check.state, detail=check.detail, transcript=check.transcript,
                   negotiated=check.negotiated, duration_s=round(elapsed, 2))
    if check.state not in (PortState.OPEN, PortState.HANDSHAKE_FAILED):
        return base
    if result is None:
        reason = conn_error or (f"the sslyze scan did not finish within {settings.deadline_s} s"
                                if not finished else "sslyze returned no result")
        return replace(base, scan_error=reason)
    as_json = _evidence_json(result)
    if result.scan_result is None:
        reason = conn_error or "sslyze could not connect"
        if check.state is PortState.HANDSHAKE_FAILED:
            return replace(base, detail=f"{check.detail}; sslyze: {reason}", sslyze_json=as_json)
        return replace(base, scan_error=f"sslyze could not connect: {reason}", sslyze_json=as_json)
    attempts = result.scan_result
    state, detail = check.state, check.detail
    if state is PortState.HANDSHAKE_FAILED:  # sslyze's legacy OpenSSL got through where Python's did not
        state, detail = PortState.OPEN, f"{check.detail}; sslyze completed a handshake"
    errors = _command_errors(attempts)
    return replace(
        base, state=state, detail=detail, sslyze_json=as_json, errors=tuple(sorted(errors.items())),
        versions=_versions(attempts),
        certificates=_certificates(attempts, endpoint, trust, errors),
        vulnerabilities=_vulnerabilities(attempts),
    )


def _evidence_json(result: ServerScanResult) -> str:
    """sslyze's JSON of one port, fit for a report: what a reader checks is kept (accepted suites,
    the received chain, every verdict field); the bulk is counted instead of listed (rejected suites,
    chains re-verified per trust store, ephemeral key bytes); error traces are cut to their last
    line and the CA file named without its folder (both would show the auditing machine's paths)."""
    data = json.loads(ServerScanResultAsJson.model_validate(result).model_dump_json())
    data = _scrub(data)
    data["mailaudit_note"] = ("elided by mailaudit: rejected cipher suites, verified chains and ephemeral "
                              "key bytes are counted; error traces cut to their last line")
    return json.dumps(data, indent=1)


_COUNTED = ("rejected_cipher_suites", "verified_certificate_chain")
_KEY_BYTES = ("public_bytes", "x", "y", "prime", "generator")


def _scrub(value: object) -> object:
    if isinstance(value, dict):
        return {key: _scrub_leaf(key, item) for key, item in value.items() if key not in _KEY_BYTES}
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    return value


def _scrub_leaf(key: str, value: object) -> object:
    if key in _COUNTED and isinstance(value, list):
        return f"{len(value)} (elided)"
    if key == "error_trace" and isinstance(value, str):
        lines = [line for line in value.strip().splitlines() if line.strip()]
        return lines[-1].strip() if lines else ""
    if key == "custom_ca_file" and isinstance(value, str):
        return Path(value).name
    return _scrub(value)


def _command_errors(attempts) -> dict[str, str]:
    errors = {}
    for command in SCAN_COMMANDS:
        attempt = getattr(attempts, command.value)
        if attempt.status is ScanCommandAttemptStatusEnum.ERROR:
            errors[command.value] = _one_line(attempt)
        elif attempt.status is not ScanCommandAttemptStatusEnum.COMPLETED:
            errors[command.value] = f"{command.value} was not run ({attempt.status.value})"
    return errors


def _one_line(attempt) -> str:
    """The last line of a scan command's error trace, e.g. 'TlsHandshakeTimedOut: ... timed out'."""
    reason = attempt.error_reason.value if attempt.error_reason else "ERROR"
    if attempt.error_trace is None:
        return reason
    lines = "".join(attempt.error_trace.format_exception_only()).strip().splitlines()
    kind, _, message = (lines[-1] if lines else "").partition(": ")
    return f"{reason}: {kind.rsplit('.', 1)[-1]}: {message}".rstrip(": ")


def _versions(attempts) -> tuple[VersionResult, ...]:
    versions = []
    for name, command in VERSION_COMMANDS.items():
        attempt = getattr(attempts, command.value)
        if attempt.status is not ScanCommandAttemptStatusEnum.COMPLETED or attempt.result is None:
            continue
        accepted = tuple(_suite(s) for s in attempt.result.accepted_cipher_suites)
        rejected = attempt.result.rejected_cipher_suites
        undecided = not accepted and bool(rejected) and all(
            TIMEOUT_REJECTION in r.error_message for r in rejected)
        versions.append(VersionResult(name, accepted, len(rejected), undecided))
    return tuple(versions)


def _suite(accepted) -> SuiteInfo:
    suite, key = accepted.cipher_suite, accepted.ephemeral_key
    ephemeral = ""
    if key is not None:
        curve = getattr(key, "curve_name", "")
        ephemeral = f"{key.type_name} {curve} {key.size} bits".replace("  ", " ")
    return SuiteInfo(suite.name, suite.key_size, suite.is_anonymous, ephemeral)


def _vulnerabilities(attempts) -> VulnerabilityResults:
    def result(command: ScanCommand):
        attempt = getattr(attempts, command.value)
        return attempt.result if attempt.status is ScanCommandAttemptStatusEnum.COMPLETED else None

    heartbleed, robot, ccs = (result(ScanCommand.HEARTBLEED), result(ScanCommand.ROBOT),
                              result(ScanCommand.OPENSSL_CCS_INJECTION))
    reneg, compression, fallback = (result(ScanCommand.SESSION_RENEGOTIATION), result(ScanCommand.TLS_COMPRESSION),
                                    result(ScanCommand.TLS_FALLBACK_SCSV))
    return VulnerabilityResults(
        heartbleed=heartbleed.is_vulnerable_to_heartbleed if heartbleed else None,
        ccs_injection=ccs.is_vulnerable_to_ccs_injection if ccs else None,
        robot=robot.robot_result.value if robot else None,
        secure_renegotiation=reneg.supports_secure_renegotiation if reneg else None,
        client_renegotiation_dos=reneg.is_vulnerable_to_client_renegotiation_dos if reneg else None,
        compression=compression.supports_compression if compression else None,
        fallback_scsv=fallback.supports_fallback_scsv if fallback else None,
    )


# --- certificates ----------------------------------------------------------------------------------

class TrustStoreLoader:
    """The trust store (--ca-file, else the system's), loaded once, and chain validation against it."""

    def __init__(self, ca_file: Path | None) -> None:
        self.path = ca_file or _system_ca_file()
        self.label = str(ca_file) if ca_file else f"system trust store ({self.path or 'none found'})"
        self._store: Store | None = None
        self._error: str | None = None
        self._loaded = False
        self._anchors: set[bytes] = set()
        self._lock = threading.Lock()

    def store(self) -> Store | None:
        """The loaded store, or None (then ``error`` says why)."""
        with self._lock:
            if not self._loaded:
                self._loaded = True
                self._store, self._error = self._load()
        return self._store

    @property
    def error(self) -> str | None:
        """Why there is no store."""
        self.store()
        return self._error

    def _load(self) -> tuple[Store | None, str | None]:
        if self.path is None:
            return None, "no system trust store found; give --ca-file"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # old roots with non-positive serials in system bundles
                anchors = x509.load_pem_x509_certificates(Path(self.path).read_bytes())
        except (OSError, ValueError) as exc:
            return None, f"cannot load trust store {self.path}: {exc}"
        self._anchors = {a.fingerprint(hashes.SHA256()) for a in anchors}
        return Store(anchors), None

    def validate(self, chain: list[x509.Certificate], name: str) -> TrustResult:
        """Validate ``chain`` (leaf first) for ``name`` at a time inside the leaf's validity."""
        store = self.store()
        if store is None:
            return TrustResult(None, self.label, self._error or "no trust store")
        leaf = chain[0]
        if _self_issued(leaf):
            if leaf.fingerprint(hashes.SHA256()) in self._anchors:
                return TrustResult(True, self.label, "the self-signed certificate is itself in the trust store")
            return TrustResult(False, self.label, "self-signed certificate (issuer = subject), not in the trust store")
        now = dt.datetime.now(dt.UTC)
        at, note = now, ""
        if now > leaf.not_valid_after_utc:
            at, note = leaf.not_valid_after_utc - dt.timedelta(seconds=1), " (checked as of its expiry date)"
        elif now < leaf.not_valid_before_utc:
            at, note = leaf.not_valid_before_utc + dt.timedelta(seconds=1), " (checked as of its start date)"
        try:
            verifier = PolicyBuilder().store(store).time(at).build_server_verifier(_subject(name))
            verified = verifier.verify(leaf, chain[1:])
        except VerificationError as exc:
            reason = str(exc).split(" (encountered processing")[0].removeprefix("validation failed: ")
            return TrustResult(False, self.label, f"chain does not validate: {reason}{note}")
        except ValueError as exc:
            return TrustResult(False, self.label, f"chain cannot be validated: {exc}{note}")
        anchor = verified[-1].subject.rfc4514_string()
        return TrustResult(True, self.label, f"chain validates to {anchor}{note}")


def _system_ca_file() -> Path | None:
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile, "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _subject(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _certificates(attempts, endpoint: TlsEndpoint, trust: TrustStoreLoader,
                  errors: dict[str, str]) -> tuple[CertificateSummary, ...]:
    attempt = attempts.certificate_info
    if attempt.status is not ScanCommandAttemptStatusEnum.COMPLETED or attempt.result is None:
        return ()
    summaries = []
    for deployment in attempt.result.certificate_deployments:
        chain = list(deployment.received_certificate_chain)
        if chain:
            summaries.append(certificate_summary(chain, endpoint.host, trust))
    if not summaries:
        errors.setdefault(ScanCommand.CERTIFICATE_INFO.value, "the server sent no certificate")
    return tuple(summaries)


def certificate_summary(chain: list[x509.Certificate], host: str, trust: TrustStoreLoader) -> CertificateSummary:
    """Summarise a received chain (leaf first) and validate it (for a name the leaf claims)."""
    leaf = chain[0]
    dns_names, ips = _san(leaf)
    key_type, key_bits = _key(leaf)
    validation_name = _validation_name(host, dns_names, ips)
    return CertificateSummary(
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        san_dns=dns_names,
        san_ip=ips,
        common_names=tuple(str(a.value) for a in leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)),
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        key_type=key_type,
        key_bits=key_bits,
        signature_hashes=tuple((c.subject.rfc4514_string(), _hash_name(c))
                               for i, c in enumerate(chain) if i == 0 or not _self_issued(c)),
        self_signed=_self_issued(leaf),
        sha256=leaf.fingerprint(hashes.SHA256()).hex(),
        chain_length=len(chain),
        trust=trust.validate(chain, validation_name),
    )


def _validation_name(host: str, dns_names: tuple[str, ...], ips: tuple[str, ...]) -> str:
    """Trust is judged apart from the name: validate for the probed host if the certificate covers
    it, else for a name the certificate claims (TLS-CERT-HOSTNAME judges the name)."""
    if name_matches(host, dns_names, ips):
        return host
    return next(iter(dns_names + ips), host)


def _san(cert: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except (x509.ExtensionNotFound, x509.DuplicateExtension, ValueError):
        return (), ()
    return (tuple(san.get_values_for_type(x509.DNSName)),
            tuple(str(i) for i in san.get_values_for_type(x509.IPAddress)))


def _key(cert: x509.Certificate) -> tuple[str, int]:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}", key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    return type(key).__name__, 0


def _hash_name(cert: x509.Certificate) -> str:
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return cert.signature_algorithm_oid.dotted_string
    return algorithm.name if algorithm is not None else "none (EdDSA)"


def _self_issued(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def name_matches(host: str, dns_names: Iterable[str], ips: Iterable[str]) -> bool:
    """RFC 6125 §6.4: an IP host matches an IP SAN; a name matches a DNS SAN exactly (case-insensitive)
    or a wildcard that is the whole left-most label and stands for exactly one label."""
    try:
        wanted_ip = ip_address(host)
    except ValueError:
        wanted_ip = None
    if wanted_ip is not None:
        return any(_same_ip(wanted_ip, i) for i in ips)
    name = host.rstrip(".").lower()
    for pattern in (d.rstrip(".").lower() for d in dns_names):
        if pattern == name:
            return True
        if pattern.startswith("*.") and "*" not in pattern[2:] and "." in name:
            first, rest = name.split(".", 1)
            if first and rest == pattern[2:] and rest.count(".") >= 1:
                return True
    return False


def _same_ip(wanted, text: str) -> bool:
    try:
        return ip_address(text) == wanted
    except ValueError:
        return False
