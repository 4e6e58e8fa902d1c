"""TLS probes: what a scan of one (server, port) found, and how sslyze's result becomes a summary.

The scan itself is in tls_scan.py (pre-flight, lean cipher-suite enumeration in tls_suites.py,
sslyze's other scan commands, all within the connection limits of tls_runner.py), addressed by IP
(the suite resolves names itself) with SNI = the host name. Here: the frozen summaries
(``TlsScan``) — a scan command that errored is recorded by name, so only the requirements
depending on it become errors — the report's trimmed sslyze JSON, and certificate checks.
Network I/O only; no pytest.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import ssl
import threading
import warnings
from collections.abc import Iterable
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
    ProtocolWithOpportunisticTlsEnum,
    ScanCommand,
    ScanCommandAttemptStatusEnum,
    ServerScanResult,
    ServerScanResultAsJson,
)

from mailaudit.policy import Policy
from mailaudit.probes.tls_preflight import PortState, Preflight

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
SSLYZE_STARTTLS = {
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

    timeout_s: int = 5  # each connection, greeting and handshake (tls.network_timeout_s)
    retries: int = 2  # connection attempts after a TCP timeout (tls.network_retries)
    connections_per_port: int = 5  # connections open at once to one port (tls.connections_per_port)
    concurrent_ports: int = 10  # ports of one server with connections open at once (tls.concurrent_ports)
    deadline_s: int = 600  # one server's whole TLS scan, from its first connection (tls.scan_deadline_s)
    max_connections_per_server: int = 20  # connections open at once to one IP address (run.max_connections_per_server)
    max_connections_total: int = 64  # connections open at once in the whole scan (run.max_connections_total)
    command_retries: int = 1  # scan commands that failed (connection lost, timeout) are run again this often
    ca_file: Path | None = None  # None: the system's trust store

    @classmethod
    def from_policy(cls, policy: Policy, ca_file: Path | None = None) -> ScanSettings:
        """The policy's TLS limits; per server, the TLS scan's share of the run's connections."""
        tls = policy.tls
        return cls(timeout_s=tls.network_timeout_s, retries=tls.network_retries,
                   connections_per_port=tls.connections_per_port, concurrent_ports=tls.concurrent_ports,
                   deadline_s=tls.scan_deadline_s, max_connections_per_server=policy.tls_connections_per_server,
                   max_connections_total=policy.run.max_connections_total, command_retries=tls.command_retries,
                   ca_file=ca_file)


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
    suite_note: str = ""  # how the cipher suites were enumerated (here, or on a port with the same stack)
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


# --- turning sslyze's result into a summary --------------------------------------------------------

def summarise(endpoint: TlsEndpoint, check: Preflight, result: ServerScanResult | None, conn_error: str | None,
              trust: TrustStoreLoader, elapsed: float, suite_note: str = "") -> TlsScan:
    """One port's ``TlsScan`` from its pre-flight and sslyze's result (None: sslyze never ran)."""
    base = TlsScan(endpoint=endpoint, state=check.state, detail=check.detail, transcript=check.transcript,
                   negotiated=check.negotiated, duration_s=round(elapsed, 2), suite_note=suite_note)
    if check.state not in (PortState.OPEN, PortState.HANDSHAKE_FAILED):
        return base
    if result is None:
        return replace(base, scan_error=conn_error or "sslyze returned no result")
    as_json = _evidence_json(result, suite_note)
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


def _evidence_json(result: ServerScanResult, suite_note: str = "") -> str:
    """sslyze's JSON of one port, fit for a report: what a reader checks is kept (accepted suites,
    the received chain, every verdict field); the bulk is counted instead of listed (rejected suites,
    chains re-verified per trust store, ephemeral key bytes); error traces are cut to their last
    line and the CA and trust-store files named without their folders (both would show the
    auditing machine's paths)."""
    data = json.loads(ServerScanResultAsJson.model_validate(result).model_dump_json())
    data = _scrub(data)
    data["mailaudit_note"] = ("elided by mailaudit: rejected cipher suites, verified chains and ephemeral "
                              "key bytes are counted; error traces cut to their last line"
                              + (f"; {suite_note}" if suite_note else ""))
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
    if key in ("custom_ca_file", "path") and isinstance(value, str) and value.startswith("/"):
        return Path(value).name  # trust store files: a name, never the auditing machine's folders
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

@functools.lru_cache(maxsize=8)
def trust_store(ca_file: Path | None) -> TrustStoreLoader:
    """The process's one loader per trust store (a fleet's scans share it: loaded once)."""
    return TrustStoreLoader(ca_file)


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
