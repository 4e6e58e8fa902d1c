"""Judging TLS scans against the policy: pure functions of a ``TlsScan`` and the ``TlsPolicy``.

Every ``evaluate_*`` first asks ``check_inputs`` whether the scan holds what that requirement
needs: a closed port is *skipped*, a port that could not be scanned or a scan command that errored
is an *error* (``CannotJudge`` is raised) — only for the requirements that depend on that
command, and never a pass. The fixtures call ``check_inputs`` before the test body.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import NoReturn

from mailaudit.errors import CannotJudge
from mailaudit.policy import TlsPolicy
from mailaudit.probes.tls import (
    VERSION_COMMANDS,
    CertificateSummary,
    TlsScan,
    VersionResult,
    name_matches,
)
from mailaudit.probes.tls_preflight import PortState
from mailaudit.verdict import Evaluation

SSL_VERSIONS = ("SSLv2", "SSLv3")
LEGACY_TLS_VERSIONS = ("TLSv1.0", "TLSv1.1")
LEGACY_VERSIONS = SSL_VERSIONS + LEGACY_TLS_VERSIONS
ALL_VERSIONS = tuple(VERSION_COMMANDS)
CERT_COMMAND = "certificate_info"
FALLBACK_COMMAND = "tls_fallback_scsv"
VULN_COMMANDS = ("heartbleed", "robot", "openssl_ccs_injection", "session_renegotiation", "tls_compression")
EVIDENCE_NAME = "TLS scan summary"

# The STARTTLS verdict is decided by the pre-flight itself: these states are real observations.
_STARTTLS_FAILURES = {
    PortState.STARTTLS_NOT_OFFERED: "STARTTLS is not advertised",
    PortState.STARTTLS_REFUSED: "STARTTLS is advertised but refused",
    PortState.NO_TLS: "STARTTLS was accepted but no TLS followed",
    PortState.HANDSHAKE_FAILED: "STARTTLS was accepted but the TLS handshake failed",
}


# --- inputs ----------------------------------------------------------------------------------------

def required_commands(scan: TlsScan, requirement: str, version: str | None = None) -> tuple[str, ...]:
    """The sslyze scan commands a requirement's verdict depends on (on this scan)."""
    commands = tuple(VERSION_COMMANDS[v].value for v in _versions_of(requirement, version))
    if requirement.startswith("TLS-CERT-"):
        commands += (CERT_COMMAND,)
    if requirement == "TLS-VULNERABILITIES":
        commands += VULN_COMMANDS
        if _legacy_on(scan) is not False:
            commands += (FALLBACK_COMMAND,)
    return commands


def check_inputs(scan: TlsScan, requirement: str, version: str | None = None) -> Evaluation | None:
    """None if the scan can decide ``requirement``; a SKIPPED evaluation for a closed port (or a
    STARTTLS check on an implicit-TLS port); raises CannotJudge when the scan cannot decide it."""
    ep = scan.endpoint
    if scan.state is PortState.CLOSED:
        return Evaluation.skipped_(f"{ep.label}: port closed ({scan.detail}); nothing to check", describe(scan),
                                   EVIDENCE_NAME)
    where = f"port {ep.port} ({ep.how})"
    if requirement == "TLS-STARTTLS-OFFERED":
        if not ep.starttls:
            return Evaluation.skipped_(f"{ep.label} uses implicit TLS, not STARTTLS", describe(scan),
                                       EVIDENCE_NAME)
        if scan.state is PortState.OPEN or scan.state in _STARTTLS_FAILURES:
            return None
        _cannot_judge(f"{where}: {scan.detail}", scan)
    if scan.state is not PortState.OPEN:
        _cannot_judge(f"{where}: {scan.detail}", scan)
    if scan.scan_error:
        _cannot_judge(f"{where}: TLS scan failed: {scan.scan_error}", scan)
    for command in required_commands(scan, requirement, version):
        if scan.error(command):
            _cannot_judge(f"{where}: sslyze {command} failed, cannot judge {requirement}: "
                          f"{scan.error(command)}", scan)
    for name in _versions_of(requirement, version):
        result = scan.version(name)
        if result is not None and result.undecided:
            _cannot_judge(f"{where}: every {name} handshake timed out; refused and unreachable "
                          f"cannot be told apart", scan)
    if requirement == "TLS-CERT-TRUST" and any(c.trust.trusted is None for c in scan.certificates):
        _cannot_judge(f"{where}: {scan.certificates[0].trust.detail}", scan)
    return None


def _versions_of(requirement: str, version: str | None) -> tuple[str, ...]:
    """The protocol versions whose cipher-suite scans a requirement reads."""
    return {
        "TLS-NO-SSL": SSL_VERSIONS,
        "TLS-NO-LEGACY-TLS": (version,) if version else LEGACY_TLS_VERSIONS,
        "TLS-MODERN": ("TLSv1.2", "TLSv1.3"),
        "TLS-WEAK-CIPHERS": ALL_VERSIONS,
    }.get(requirement, ())


def _cannot_judge(message: str, scan: TlsScan) -> NoReturn:
    raise CannotJudge(message, describe(scan), EVIDENCE_NAME)


def _legacy_on(scan: TlsScan) -> bool | None:
    """Does the port accept a pre-1.2 version? None if a legacy scan command errored."""
    if any(scan.error(VERSION_COMMANDS[v].value) for v in LEGACY_VERSIONS):
        return None
    return any(scan.version(v) is not None and scan.version(v).supported for v in LEGACY_VERSIONS)


def _passed(scan: TlsScan, message: str) -> Evaluation:
    return Evaluation.passed_(message, describe(scan), EVIDENCE_NAME)


def _failed(scan: TlsScan, message: str, severity: str | None = None) -> Evaluation:
    return replace(Evaluation.failed_(message, describe(scan), EVIDENCE_NAME), severity=severity)


# --- TLS-STARTTLS-OFFERED --------------------------------------------------------------------------

def evaluate_starttls_offered(scan: TlsScan) -> Evaluation:
    """STARTTLS is advertised and works (RFC 3207; RFC 2595)."""
    blocked = check_inputs(scan, "TLS-STARTTLS-OFFERED")
    if blocked:
        return blocked
    ep = scan.endpoint
    if scan.state is PortState.OPEN:
        return _passed(scan, f"{ep.label}: STARTTLS advertised and working ({ep.starttls}); "
                             f"negotiated {scan.negotiated or 'TLS'}")
    return _failed(scan, f"{ep.label}: {_STARTTLS_FAILURES[scan.state]} — {scan.detail}; "
                         f"expected STARTTLS advertised and a TLS handshake after it (RFC 3207)")


# --- versions --------------------------------------------------------------------------------------

def _version_line(result: VersionResult) -> str:
    shown = ", ".join(s.name for s in result.accepted[:3])
    more = f" and {len(result.accepted) - 3} more" if len(result.accepted) > 3 else ""
    return f"{result.version} ({len(result.accepted)} suites: {shown}{more})"


def evaluate_no_ssl(scan: TlsScan) -> Evaluation:
    """SSL 2.0 and SSL 3.0 are refused (RFC 6176, RFC 7568)."""
    blocked = check_inputs(scan, "TLS-NO-SSL")
    if blocked:
        return blocked
    accepted = [r for v in SSL_VERSIONS if (r := scan.version(v)) is not None and r.supported]
    ep = scan.endpoint
    if accepted:
        return _failed(scan, f"{ep.label} accepts {'; '.join(_version_line(r) for r in accepted)}; "
                             f"expected SSL 2.0 and 3.0 refused (RFC 6176, RFC 7568)")
    return _passed(scan, f"{ep.label} refuses SSLv2 and SSLv3 (every suite rejected)")


def evaluate_legacy_version(scan: TlsScan, version: str) -> Evaluation:
    """TLS 1.0 / TLS 1.1 (one verdict each) is refused (RFC 8996)."""
    if version not in LEGACY_TLS_VERSIONS:
        raise ValueError(f"not a legacy TLS version: {version}")
    blocked = check_inputs(scan, "TLS-NO-LEGACY-TLS", version)
    if blocked:
        return blocked
    result = scan.version(version)
    assert result is not None
    ep = scan.endpoint
    if result.supported:
        return _failed(scan, f"{ep.label} accepts {_version_line(result)}; expected {version} refused (RFC 8996)")
    return _passed(scan, f"{ep.label} refuses {version} (all {result.rejected_count} suites rejected)")


def evaluate_modern(scan: TlsScan, policy: TlsPolicy) -> Evaluation:
    """TLS 1.2 is accepted; TLS 1.3 is accepted (1.3 missing is a low-severity failure by policy)."""
    blocked = check_inputs(scan, "TLS-MODERN")
    if blocked:
        return blocked
    ep = scan.endpoint
    has12, has13 = (scan.version(v).supported for v in ("TLSv1.2", "TLSv1.3"))
    if not has12:
        also = "TLS 1.3 accepted" if has13 else "TLS 1.3 refused too"
        return _failed(scan, f"{ep.label} refuses TLSv1.2 ({also}); expected TLS 1.2 accepted (RFC 8996)")
    if has13:
        return _passed(scan, f"{ep.label} accepts TLSv1.2 and TLSv1.3")
    if policy.tls13_missing_fails:
        return _failed(scan, f"{ep.label} accepts TLSv1.2 but refuses TLSv1.3; expected TLS 1.3 too "
                             f"(NCSC-NL; policy tls.tls13_missing_fails)", severity="low")
    return _passed(scan, f"{ep.label} accepts TLSv1.2; TLSv1.3 refused (allowed by policy tls.tls13_missing_fails)")


# --- TLS-WEAK-CIPHERS ------------------------------------------------------------------------------

def suite_classes(name: str, version: str, fs_versions: Iterable[str] = ("TLSv1.2",)) -> tuple[str, ...]:
    """The weak classes a suite (IANA or SSLv2 name) falls in, for a protocol version."""
    n = name.upper()
    classes = []
    if "_NULL_" in n or n.endswith("_NULL") or "WITH_NULL" in n:
        classes.append("NULL")
    if "ANON" in n:
        classes.append("ANONYMOUS")
    if "EXPORT" in n:
        classes.append("EXPORT")
    if "RC4" in n:
        classes.append("RC4")
    if "3DES" in n or "DES_192_EDE3" in n or "DES_EDE" in n:
        classes.append("3DES")
    elif "DES" in n:
        classes.append("DES")
    if any(c in classes for c in ("DES", "3DES")) or "IDEA" in n or "RC2" in n:
        classes.append("64BIT_BLOCK")
    if version in fs_versions and version != "TLSv1.3" and not forward_secret(n):
        classes.append("NO_FORWARD_SECRECY")
    return tuple(classes)


def forward_secret(name: str) -> bool:
    """ECDHE/DHE key exchange (or any TLS 1.3 suite, which has no key exchange in its name)."""
    n = name.upper()
    if n.startswith("SSL_CK_"):
        return False
    if "_WITH_" not in n:
        return True  # TLS 1.3: TLS_AES_128_GCM_SHA256 etc. are always (EC)DHE
    kex = n.split("_WITH_")[0].removeprefix("TLS_").removeprefix("SSL_")
    return kex.startswith(("ECDHE", "DHE"))


def weak_suites(scan: TlsScan, policy: TlsPolicy) -> list[tuple[str, str, tuple[str, ...]]]:
    """(version, suite, forbidden classes) for every accepted suite in a forbidden class."""
    forbidden = set(policy.forbidden_suite_classes)
    found = []
    for result in scan.versions:
        for suite in result.accepted:
            classes = suite_classes(suite.name, result.version, policy.forward_secrecy_versions)
            hit = tuple(c for c in classes if c in forbidden)
            if hit:
                found.append((result.version, suite.name, hit))
    return found


def evaluate_weak_ciphers(scan: TlsScan, policy: TlsPolicy) -> Evaluation:
    """No NULL, anonymous, EXPORT, RC4, DES/3DES or 64-bit-block suites; forward secrecy on TLS 1.2."""
    blocked = check_inputs(scan, "TLS-WEAK-CIPHERS")
    if blocked:
        return blocked
    ep = scan.endpoint
    found = weak_suites(scan, policy)
    if found:
        listed = "; ".join(f"{v} {name} ({', '.join(c)})" for v, name, c in found)
        return _failed(scan, f"{ep.label} accepts {len(found)} weak suite(s): {listed}; expected none of "
                             f"{', '.join(policy.forbidden_suite_classes)} (RFC 7465; NIST SP 800-52r2)")
    total = sum(len(v.accepted) for v in scan.versions)
    return _passed(scan, f"{ep.label}: none of the {total} accepted suites is in a forbidden class "
                         f"({', '.join(policy.forbidden_suite_classes)})")


# --- certificates ----------------------------------------------------------------------------------

def _cert_name(cert: CertificateSummary) -> str:
    return cert.subject or f"certificate {cert.sha256[:16]}"


def _no_certificate(scan: TlsScan) -> None:
    if not scan.certificates:
        _cannot_judge(f"port {scan.endpoint.port}: no certificate was received", scan)


def evaluate_cert_trust(scan: TlsScan) -> Evaluation:
    """The chain validates against the configured trust store (NIST SP 800-52r2)."""
    blocked = check_inputs(scan, "TLS-CERT-TRUST")
    if blocked:
        return blocked
    _no_certificate(scan)
    ep = scan.endpoint
    bad = [c for c in scan.certificates if not c.trust.trusted]
    if bad:
        parts = []
        for cert in bad:
            self_signed = " is self-signed and" if cert.self_signed else ""
            parts.append(f"{_cert_name(cert)} (issuer {cert.issuer}){self_signed} not trusted by "
                         f"{cert.trust.store}: {cert.trust.detail}")
        return _failed(scan, f"{ep.label}: {'; '.join(parts)}; expected a chain to a trusted root")
    return _passed(scan, f"{ep.label}: {'; '.join(c.trust.detail for c in scan.certificates)} "
                         f"({scan.certificates[0].trust.store})")


def evaluate_cert_hostname(scan: TlsScan) -> Evaluation:
    """The certificate covers the host name that was probed (RFC 6125)."""
    blocked = check_inputs(scan, "TLS-CERT-HOSTNAME")
    if blocked:
        return blocked
    _no_certificate(scan)
    ep = scan.endpoint
    bad = [c for c in scan.certificates if not name_matches(ep.host, c.san_dns, c.san_ip)]
    if bad:
        parts = [f"{_cert_name(c)} covers {_names(c)}" for c in bad]
        return _failed(scan, f"{ep.label}: {'; '.join(parts)}; expected a SAN matching {ep.host} (RFC 6125 §6.4)")
    return _passed(scan, f"{ep.label}: the certificate covers {ep.host} ({_names(scan.certificates[0])})")


def _names(cert: CertificateSummary) -> str:
    names = [f"DNS:{n}" for n in cert.san_dns] + [f"IP:{i}" for i in cert.san_ip]
    if names:
        return "SAN " + ", ".join(names)
    cns = ", ".join(cert.common_names) or "nothing"
    return f"no SAN (CN {cns}, which RFC 6125 §6.4.4 does not accept when matching)"


def evaluate_cert_expiry(scan: TlsScan, policy: TlsPolicy) -> Evaluation:
    """Not expired, and valid for at least the policy's warning window."""
    blocked = check_inputs(scan, "TLS-CERT-EXPIRY")
    if blocked:
        return blocked
    _no_certificate(scan)
    ep, now = scan.endpoint, scan.scanned_at
    window = dt.timedelta(days=policy.expiry_warning_days)
    problems = []
    for cert in scan.certificates:
        left = cert.not_after - now
        if cert.not_before > now:
            problems.append(f"{_cert_name(cert)} is not valid before {_day(cert.not_before)}")
        elif left <= dt.timedelta(0):
            problems.append(f"{_cert_name(cert)} expired on {_day(cert.not_after)}")
        elif left < window:
            problems.append(f"{_cert_name(cert)} expires on {_day(cert.not_after)}, in {left.days} days")
    if problems:
        return _failed(scan, f"{ep.label}: {'; '.join(problems)}; expected at least "
                             f"{policy.expiry_warning_days} days of validity (policy tls.expiry_warning_days)")
    soonest = min(scan.certificates, key=lambda c: c.not_after)
    return _passed(scan, f"{ep.label}: valid until {_day(soonest.not_after)} "
                         f"({(soonest.not_after - now).days} days, window {policy.expiry_warning_days})")


def _day(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def evaluate_cert_key(scan: TlsScan, policy: TlsPolicy) -> Evaluation:
    """RSA >= the policy's bits (2048) or EC >= 256 bits; no SHA-1/MD5 signature in the chain."""
    blocked = check_inputs(scan, "TLS-CERT-KEY")
    if blocked:
        return blocked
    _no_certificate(scan)
    ep = scan.endpoint
    problems = [p for cert in scan.certificates for p in _key_problems(cert, policy)]
    if problems:
        return _failed(scan, f"{ep.label}: {'; '.join(problems)}; expected RSA >= {policy.min_rsa_key_bits} or "
                             f"EC >= {policy.min_ec_key_bits} bits and no "
                             f"{'/'.join(policy.forbidden_signature_hashes)} signature (NIST SP 800-57)")
    keys = ", ".join(f"{c.key_type} {c.key_bits} bits signed {c.signature_hashes[0][1]}" for c in scan.certificates)
    return _passed(scan, f"{ep.label}: {keys}")


def _key_problems(cert: CertificateSummary, policy: TlsPolicy) -> list[str]:
    problems = []
    name = _cert_name(cert)
    if cert.key_type == "RSA" and cert.key_bits < policy.min_rsa_key_bits:
        problems.append(f"{name} has an RSA {cert.key_bits}-bit key")
    elif cert.key_type.startswith("EC") and cert.key_bits < policy.min_ec_key_bits:
        problems.append(f"{name} has an {cert.key_type} {cert.key_bits}-bit key")
    elif cert.key_type not in ("RSA", "Ed25519", "Ed448") and not cert.key_type.startswith("EC"):
        problems.append(f"{name} has a {cert.key_type} key (neither RSA nor EC)")
    forbidden = {h.lower() for h in policy.forbidden_signature_hashes}
    for subject, hash_name in cert.signature_hashes:
        if hash_name.lower() in forbidden:
            problems.append(f"{subject or name} is signed with {hash_name}")
    return problems


# --- TLS-VULNERABILITIES ---------------------------------------------------------------------------

def evaluate_vulnerabilities(scan: TlsScan) -> Evaluation:
    """Not vulnerable to Heartbleed, ROBOT, CCS injection, insecure renegotiation, compression;
    TLS_FALLBACK_SCSV supported where legacy versions are on."""
    blocked = check_inputs(scan, "TLS-VULNERABILITIES")
    if blocked:
        return blocked
    ep, v = scan.endpoint, scan.vulnerabilities
    findings = []
    if v.heartbleed:
        findings.append("vulnerable to Heartbleed (CVE-2014-0160)")
    if v.ccs_injection:
        findings.append("vulnerable to OpenSSL CCS injection (CVE-2014-0224)")
    if v.robot and v.robot.startswith("VULNERABLE"):
        findings.append(f"vulnerable to ROBOT ({v.robot})")
    if v.secure_renegotiation is False:
        findings.append("no secure renegotiation (RFC 5746; CVE-2009-3555)")
    if v.compression:
        findings.append("TLS compression on (CRIME, CVE-2012-4929)")
    legacy = [x for x in LEGACY_VERSIONS if scan.version(x) is not None and scan.version(x).supported]
    if legacy and v.fallback_scsv is False:
        findings.append(f"no TLS_FALLBACK_SCSV although {', '.join(legacy)} accepted (RFC 7507)")
    if findings:
        return _failed(scan, f"{ep.label}: {'; '.join(findings)}")
    if v.fallback_scsv is False and _legacy_on(scan) is None:
        _cannot_judge(f"port {ep.port}: no TLS_FALLBACK_SCSV, and whether legacy versions are on is unknown "
                      f"(a legacy version scan failed)", scan)
    if v.robot == "UNKNOWN_INCONSISTENT_RESULTS":
        return Evaluation.inconclusive_(f"{ep.label}: ROBOT test gave inconsistent results; other checks clean",
                                        describe(scan), EVIDENCE_NAME)
    fallback = "fallback SCSV supported" if v.fallback_scsv else "fallback SCSV not needed (no legacy version)"
    return _passed(scan, f"{ep.label}: not vulnerable to Heartbleed, ROBOT, CCS injection; secure renegotiation; "
                         f"no compression; {fallback}")


# --- evidence --------------------------------------------------------------------------------------

def describe(scan: TlsScan) -> str:
    """The compact per-port summary attached to every TLS verdict (versions, suites, certificate)."""
    ep = scan.endpoint
    lines = [f"{ep.host} ({ep.ip}) port {ep.port}/{ep.service}, {ep.how}",
             f"state: {scan.state.value} — {scan.detail}"]
    if scan.scan_error:
        lines.append(f"scan error: {scan.scan_error}")
    if scan.versions:
        accepted = ", ".join(scan.accepted_versions) or "none"
        refused = ", ".join(v.version for v in scan.versions if not v.supported) or "none"
        lines.append(f"versions accepted: {accepted}; refused: {refused}")
        for result in reversed(scan.versions):
            if result.supported:
                lines.append(f"  {result.version}: {', '.join(s.name for s in result.accepted)}")
    if scan.suite_note and scan.versions:
        lines.append(scan.suite_note)
    for cert in scan.certificates:
        lines.extend(_describe_cert(cert, scan.scanned_at))
    if scan.versions:
        lines.append(_describe_vulns(scan))
    for command, error in scan.errors:
        lines.append(f"scan command error: {command}: {error}")
    if scan.retried:
        lines.append(f"run a second time after a failure: {', '.join(scan.retried)}")
    if scan.transcript:
        lines.append("pre-flight dialogue:")
        lines.extend(f"  {line}" for line in scan.transcript.splitlines())
    lines.append(f"scanned {scan.scanned_at:%Y-%m-%d %H:%M:%S} UTC")
    return "\n".join(lines)


def _describe_cert(cert: CertificateSummary, now: dt.datetime) -> list[str]:
    hashes = ", ".join(f"{h}" for _, h in cert.signature_hashes)
    return [
        f"certificate: subject {cert.subject}; issuer {cert.issuer}{' (self-signed)' if cert.self_signed else ''}",
        f"  {_names(cert)}",
        f"  valid {_day(cert.not_before)} to {_day(cert.not_after)} ({(cert.not_after - now).days} days left)",
        f"  key {cert.key_type} {cert.key_bits} bits; signature hashes (leaf first) {hashes}; "
        f"chain of {cert.chain_length}; sha256 {cert.sha256}",
        f"  trust: {'trusted' if cert.trust.trusted else 'NOT trusted' if cert.trust.trusted is False else 'unknown'}"
        f" by {cert.trust.store} — {cert.trust.detail}",
    ]


def _describe_vulns(scan: TlsScan) -> str:
    v = scan.vulnerabilities

    def show(value: object) -> str:
        return "error" if value is None else ("yes" if value is True else "no" if value is False else str(value))

    return (f"heartbleed {show(v.heartbleed)}; CCS injection {show(v.ccs_injection)}; ROBOT {show(v.robot)}; "
            f"secure renegotiation {show(v.secure_renegotiation)}; client renegotiation "
            f"{show(v.client_renegotiation_dos)}; compression {show(v.compression)}; "
            f"fallback SCSV {show(v.fallback_scsv)}")


# --- for cross-checks ------------------------------------------------------------------------------

@dataclass(frozen=True)
class LegacyTlsObservation:
    """Which legacy versions (SSLv2, SSLv3, TLSv1.0, TLSv1.1) any probed port of one server accepted.

    ``accepted_versions`` is the union over the ports in ``by_port``; ports that could not be
    observed (closed, not TLS, scan error) are listed in ``unobserved`` with the reason.
    """

    server: str
    accepted_versions: frozenset[str]
    by_port: tuple[tuple[int, frozenset[str]], ...]
    unobserved: tuple[str, ...]

    @property
    def observed_ports(self) -> tuple[int, ...]:
        """The ports whose legacy versions were all decided."""
        return tuple(port for port, _ in self.by_port)

    @property
    def transcript(self) -> str:
        """One line per port: what it accepted (or why it was not observed), for evidence."""
        lines = [f"{self.server} port {port}: {', '.join(sorted(v)) or 'no legacy version'} accepted"
                 for port, v in self.by_port]
        lines += [f"{self.server}: not observed: {reason}" for reason in self.unobserved]
        return "\n".join(lines)


def observe_legacy(server: str, scans: Iterable[TlsScan]) -> LegacyTlsObservation:
    """Summarise the legacy versions one server accepted over its scanned ports."""
    by_port: list[tuple[int, frozenset[str]]] = []
    unobserved: list[str] = []
    for scan in scans:
        try:
            blocked = check_inputs(scan, "TLS-NO-SSL") or check_inputs(scan, "TLS-NO-LEGACY-TLS")
        except CannotJudge as exc:
            unobserved.append(str(exc))
            continue
        if blocked:
            unobserved.append(blocked.message)
            continue
        by_port.append((scan.endpoint.port, frozenset(
            v for v in LEGACY_VERSIONS if scan.version(v) is not None and scan.version(v).supported)))
    accepted = frozenset().union(*(versions for _, versions in by_port)) if by_port else frozenset()
    return LegacyTlsObservation(server, accepted, tuple(by_port), tuple(unobserved))
