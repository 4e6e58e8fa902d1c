"""Offline tests of TLS judging: hand-built scans, every TLS-* evaluation both ways, errors never pass."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from mailaudit.errors import CannotJudge
from mailaudit.evaluate.tls import (
    check_inputs,
    describe,
    evaluate_cert_expiry,
    evaluate_cert_hostname,
    evaluate_cert_key,
    evaluate_cert_trust,
    evaluate_legacy_version,
    evaluate_modern,
    evaluate_no_ssl,
    evaluate_starttls_offered,
    evaluate_vulnerabilities,
    evaluate_weak_ciphers,
    forward_secret,
    observe_legacy,
    suite_classes,
)
from mailaudit.policy import load_policy
from mailaudit.probes.tls import (
    CertificateSummary,
    SuiteInfo,
    TlsEndpoint,
    TlsScan,
    TrustResult,
    VersionResult,
    VulnerabilityResults,
    name_matches,
)
from mailaudit.probes.tls_preflight import PortState
from mailaudit.verdict import Outcome

REPO = Path(__file__).resolve().parents[2]
POLICY = load_policy(REPO / "policies" / "baseline.yaml").tls
NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
STRONG12 = ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256")
STRONG13 = ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")


def suites(*names: str) -> tuple[SuiteInfo, ...]:
    return tuple(SuiteInfo(n, 128, "anon" in n.lower()) for n in names)


def versions(**accepted: tuple[str, ...]) -> tuple[VersionResult, ...]:
    """Every version; the ones named (SSLv2=..., TLSv1_2=...) accept those suites."""
    out = []
    for name in ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"):
        names = accepted.get(name.replace(".", "_"), ())
        out.append(VersionResult(name, suites(*names), rejected_count=40 - len(names)))
    return tuple(out)


def cert(**changes) -> CertificateSummary:
    base = CertificateSummary(
        subject="CN=mail.example.test", issuer="CN=Example CA", san_dns=("mail.example.test",), san_ip=(),
        common_names=("mail.example.test",), not_before=NOW - dt.timedelta(days=30),
        not_after=NOW + dt.timedelta(days=300), key_type="RSA", key_bits=2048,
        signature_hashes=(("CN=mail.example.test", "sha256"),), self_signed=False, sha256="ab" * 32,
        chain_length=2, trust=TrustResult(True, "ca.pem", "chain validates to CN=Example CA"))
    return replace(base, **changes)


def scan(port: int = 25, starttls: str | None = "smtp", **changes) -> TlsScan:
    """A clean, hardened-looking scan; ``changes`` override fields."""
    base = TlsScan(
        endpoint=TlsEndpoint("mail.example.test", "192.0.2.1", port, "smtp", starttls),
        state=PortState.OPEN, detail="TLSv1.3 handshake completed", negotiated="TLSv1.3 TLS_AES_256_GCM_SHA384",
        scanned_at=NOW, versions=versions(TLSv1_2=STRONG12, TLSv1_3=STRONG13), certificates=(cert(),),
        vulnerabilities=VulnerabilityResults(False, False, "NOT_VULNERABLE_NO_ORACLE", True, False, False, True))
    return replace(base, **changes)


WEAK = scan(versions=versions(TLSv1_0=("TLS_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
                              TLSv1_1=("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",),
                              TLSv1_2=(*STRONG12, "TLS_RSA_WITH_AES_128_GCM_SHA256"), TLSv1_3=STRONG13))


# --- one test per evaluation, both ways --------------------------------------------------------------

def test_starttls_offered_both_ways():
    """STARTTLS working passes; not advertised or refused fails naming what the server said."""
    assert evaluate_starttls_offered(scan()).passed
    missing = evaluate_starttls_offered(scan(state=PortState.STARTTLS_NOT_OFFERED,
                                             detail="STARTTLS not advertised in the EHLO reply (keywords: SIZE)"))
    assert missing.outcome is Outcome.FAILED and "keywords: SIZE" in missing.message
    refused = evaluate_starttls_offered(scan(state=PortState.STARTTLS_REFUSED,
                                             detail="STARTTLS answered '454 4.7.0 TLS not available', not 220"))
    assert refused.outcome is Outcome.FAILED and "454" in refused.message


def test_starttls_timeout_is_error_and_implicit_port_is_skipped():
    """A silent port is an error for STARTTLS too; an implicit-TLS port has no STARTTLS verdict."""
    timeout = _cannot_judge(evaluate_starttls_offered, scan(state=PortState.DIALOGUE_FAILED,
                                                           detail="no greeting within 5 s"))
    assert "no greeting within 5 s" in str(timeout)
    assert evaluate_starttls_offered(scan(port=465, starttls=None)).outcome is Outcome.SKIPPED


def test_no_ssl_both_ways():
    """SSLv3 accepted fails and names the suites; none accepted passes."""
    assert evaluate_no_ssl(scan()).passed
    bad = evaluate_no_ssl(scan(versions=versions(SSLv3=("TLS_RSA_WITH_RC4_128_SHA",), TLSv1_2=STRONG12)))
    assert bad.outcome is Outcome.FAILED and "SSLv3" in bad.message and "TLS_RSA_WITH_RC4_128_SHA" in bad.message


@pytest.mark.parametrize("version", ["TLSv1.0", "TLSv1.1"])
def test_legacy_version_both_ways(version):
    """Each legacy version is its own verdict: refused passes, accepted fails naming the version."""
    assert evaluate_legacy_version(scan(), version).passed
    bad = evaluate_legacy_version(WEAK, version)
    assert bad.outcome is Outcome.FAILED and f"accepts {version}" in bad.message


def test_modern_both_ways_and_tls13_missing_is_low():
    """1.2 and 1.3 pass; 1.2 missing fails; 1.3 missing fails with severity low (or passes by policy)."""
    assert evaluate_modern(scan(), POLICY).passed
    no12 = evaluate_modern(scan(versions=versions(TLSv1_3=STRONG13)), POLICY)
    assert no12.outcome is Outcome.FAILED and "refuses TLSv1.2" in no12.message and no12.severity is None
    no13 = scan(versions=versions(TLSv1_2=STRONG12))
    low = evaluate_modern(no13, POLICY)
    assert low.outcome is Outcome.FAILED and low.severity == "low" and "TLSv1.3" in low.message
    assert evaluate_modern(no13, replace(POLICY, tls13_missing_fails=False)).passed


def test_weak_ciphers_both_ways_lists_every_offending_suite():
    """Strong suites pass; 3DES and static-RSA suites fail, each listed with its classes."""
    assert evaluate_weak_ciphers(scan(), POLICY).passed
    bad = evaluate_weak_ciphers(WEAK, POLICY)
    assert bad.outcome is Outcome.FAILED
    assert "TLSv1.0 TLS_RSA_WITH_3DES_EDE_CBC_SHA (3DES, 64BIT_BLOCK)" in bad.message
    assert "TLSv1.2 TLS_RSA_WITH_AES_128_GCM_SHA256 (NO_FORWARD_SECRECY)" in bad.message
    assert "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA" not in bad.message  # not weak on its own


@pytest.mark.parametrize(("name", "version", "expected"), [
    ("TLS_RSA_WITH_NULL_SHA256", "TLSv1.2", ("NULL", "NO_FORWARD_SECRECY")),
    ("TLS_ECDHE_ECDSA_WITH_NULL_SHA", "TLSv1.0", ("NULL",)),
    ("TLS_DH_anon_WITH_AES_128_CBC_SHA", "TLSv1.2", ("ANONYMOUS", "NO_FORWARD_SECRECY")),
    ("TLS_ECDH_anon_WITH_AES_128_CBC_SHA", "TLSv1.2", ("ANONYMOUS", "NO_FORWARD_SECRECY")),
    ("TLS_RSA_EXPORT_WITH_RC4_40_MD5", "TLSv1.0", ("EXPORT", "RC4")),
    ("TLS_ECDHE_RSA_WITH_RC4_128_SHA", "TLSv1.2", ("RC4",)),
    ("TLS_RSA_WITH_DES_CBC_SHA", "TLSv1.0", ("DES", "64BIT_BLOCK")),
    ("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "TLSv1.2", ("3DES", "64BIT_BLOCK")),
    ("TLS_RSA_WITH_IDEA_CBC_SHA", "TLSv1.1", ("64BIT_BLOCK",)),
    ("SSL_CK_DES_192_EDE3_CBC_WITH_MD5", "SSLv2", ("3DES", "64BIT_BLOCK")),
    ("SSL_CK_RC2_128_CBC_WITH_MD5", "SSLv2", ("64BIT_BLOCK",)),
    ("TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256", "TLSv1.2", ("NO_FORWARD_SECRECY",)),
    ("TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", "TLSv1.2", ()),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLSv1.2", ()),
    ("TLS_AES_128_GCM_SHA256", "TLSv1.3", ()),
    ("TLS_RSA_WITH_AES_128_CBC_SHA", "TLSv1.0", ()),  # forward secrecy is asked of TLS 1.2 only
])
def test_suite_classes(name, version, expected):
    """Each suite falls in exactly the weak classes its name says (IANA and SSLv2 names)."""
    assert suite_classes(name, version, ("TLSv1.2",)) == expected


def test_forward_secrecy_versions_come_from_the_policy():
    """The strict policy asks forward secrecy of every pre-1.3 version."""
    assert suite_classes("TLS_RSA_WITH_AES_128_CBC_SHA", "TLSv1.0", ("TLSv1.0", "TLSv1.2")) == ("NO_FORWARD_SECRECY",)
    assert forward_secret("TLS_DHE_PSK_WITH_AES_128_GCM_SHA256") and not forward_secret("TLS_PSK_WITH_NULL_SHA")


def test_cert_trust_both_ways():
    """A chain to the store passes; a self-signed certificate fails and says so."""
    assert evaluate_cert_trust(scan()).passed
    untrusted = TrustResult(False, "ca.pem", "self-signed certificate (issuer = subject), not in the trust store")
    self_signed = cert(self_signed=True, issuer="CN=mail.example.test", trust=untrusted)
    bad = evaluate_cert_trust(scan(certificates=(self_signed,)))
    assert bad.outcome is Outcome.FAILED and "self-signed" in bad.message and "ca.pem" in bad.message


def test_cert_trust_without_store_is_error():
    """No trust store to validate against is an error, never a pass."""
    unknown = scan(certificates=(cert(trust=TrustResult(None, "system", "no system trust store found")),))
    _cannot_judge(check_inputs, unknown, "TLS-CERT-TRUST")
    _cannot_judge(evaluate_cert_trust, unknown)


def test_cert_hostname_both_ways():
    """The probed name in the SAN passes; another name fails naming what the certificate covers."""
    assert evaluate_cert_hostname(scan()).passed
    bad = evaluate_cert_hostname(scan(certificates=(cert(san_dns=("wrong.example.org",)),)))
    assert bad.outcome is Outcome.FAILED and "DNS:wrong.example.org" in bad.message
    cn_only = evaluate_cert_hostname(scan(certificates=(cert(san_dns=()),)))
    assert cn_only.outcome is Outcome.FAILED and "no SAN" in cn_only.message


@pytest.mark.parametrize(("host", "dns", "ips", "expected"), [
    ("mail.example.test", ["MAIL.example.test"], [], True),
    ("mail.example.test", ["*.example.test"], [], True),
    ("a.b.example.test", ["*.example.test"], [], False),
    ("example.test", ["*.example.test"], [], False),
    ("mail.example.test", ["m*.example.test"], [], False),
    ("mail.example.test", ["*.test"], [], False),
    ("192.0.2.1", ["192.0.2.1"], [], False),
    ("192.0.2.1", [], ["192.0.2.1"], True),
    ("mail.example.test.", ["mail.example.test"], [], True),
])
def test_name_matching_follows_rfc6125(host, dns, ips, expected):
    """Exact names, one-label left-most wildcards, IPs only against IP SANs."""
    assert name_matches(host, dns, ips) is expected


def test_cert_expiry_both_ways():
    """300 days left passes; 10 days (inside 21) fails with the date; expired fails."""
    assert evaluate_cert_expiry(scan(), POLICY).passed
    soon = evaluate_cert_expiry(scan(certificates=(cert(not_after=NOW + dt.timedelta(days=10)),)), POLICY)
    assert soon.outcome is Outcome.FAILED and "2026-12-07" in soon.message and "in 10 days" in soon.message
    gone = evaluate_cert_expiry(scan(certificates=(cert(not_after=NOW - dt.timedelta(days=1)),)), POLICY)
    assert gone.outcome is Outcome.FAILED and "expired on" in gone.message


def test_cert_key_both_ways():
    """RSA 2048/SHA-256 passes; RSA 1024, EC 224 and SHA-1 signatures fail."""
    assert evaluate_cert_key(scan(), POLICY).passed
    small = evaluate_cert_key(scan(certificates=(cert(key_bits=1024),)), POLICY)
    assert small.outcome is Outcome.FAILED and "RSA 1024-bit key" in small.message
    ec = evaluate_cert_key(scan(certificates=(cert(key_type="EC secp224r1", key_bits=224),)), POLICY)
    assert ec.outcome is Outcome.FAILED and "224-bit" in ec.message
    assert evaluate_cert_key(scan(certificates=(cert(key_type="EC secp256r1", key_bits=256),)), POLICY).passed
    sha1 = evaluate_cert_key(scan(certificates=(cert(signature_hashes=(("CN=x", "sha1"),)),)), POLICY)
    assert sha1.outcome is Outcome.FAILED and "signed with sha1" in sha1.message


def test_vulnerabilities_both_ways():
    """Clean passes; each finding fails with its name; no fallback SCSV matters only with legacy on."""
    assert evaluate_vulnerabilities(scan()).passed
    for field, value, text in [("heartbleed", True, "Heartbleed"), ("ccs_injection", True, "CCS injection"),
                               ("robot", "VULNERABLE_STRONG_ORACLE", "ROBOT"),
                               ("secure_renegotiation", False, "secure renegotiation"),
                               ("compression", True, "compression")]:
        bad = evaluate_vulnerabilities(scan(vulnerabilities=replace(scan().vulnerabilities, **{field: value})))
        assert bad.outcome is Outcome.FAILED and text in bad.message, field
    no_scsv = replace(scan().vulnerabilities, fallback_scsv=False)
    assert evaluate_vulnerabilities(scan(vulnerabilities=no_scsv)).passed
    legacy = evaluate_vulnerabilities(replace(WEAK, vulnerabilities=no_scsv))
    assert legacy.outcome is Outcome.FAILED and "TLS_FALLBACK_SCSV" in legacy.message


# --- errors: only the dependent requirements, never a pass --------------------------------------------

def test_a_failed_scan_command_errors_only_its_requirements():
    """tls_1_0_cipher_suites failing makes TLS 1.0 (and the suite check) errors, not TLS 1.1 or the certificate."""
    broken = replace(scan(versions=tuple(v for v in scan().versions if v.version != "TLSv1.0")),
                     errors=(("tls_1_0_cipher_suites", "CONNECTIVITY_ISSUE: TlsHandshakeTimedOut"),))
    tls10 = _cannot_judge(evaluate_legacy_version, broken, "TLSv1.0")
    assert "tls_1_0_cipher_suites" in str(tls10)
    _cannot_judge(evaluate_weak_ciphers, broken, POLICY)
    assert evaluate_legacy_version(broken, "TLSv1.1").passed
    assert evaluate_cert_trust(broken).passed
    assert evaluate_modern(broken, POLICY).passed
    assert evaluate_vulnerabilities(broken).passed  # fallback SCSV supported: legacy versions do not matter
    no_scsv = replace(broken, vulnerabilities=replace(broken.vulnerabilities, fallback_scsv=False))
    _cannot_judge(evaluate_vulnerabilities, no_scsv)  # is TLS 1.0 on? cannot tell


def test_certificate_command_error_errors_the_certificate_requirements():
    """certificate_info failing makes every TLS-CERT-* an error."""
    broken = scan(certificates=(), errors=(("certificate_info", "BUG_IN_SSLYZE: ValueError"),))
    for evaluate in (evaluate_cert_trust, evaluate_cert_hostname):
        _cannot_judge(evaluate, broken)
    for evaluate in (evaluate_cert_expiry, evaluate_cert_key):
        _cannot_judge(evaluate, broken, POLICY)
    assert evaluate_no_ssl(broken).passed


def test_all_timeouts_is_not_a_refusal():
    """A version whose every handshake timed out is an error, not 'refused'."""
    undecided = tuple(replace(v, undecided=True) if v.version == "TLSv1.0" else v for v in scan().versions)
    _cannot_judge(evaluate_legacy_version, scan(versions=undecided), "TLSv1.0")
    assert evaluate_legacy_version(scan(versions=undecided), "TLSv1.1").passed


@pytest.mark.parametrize(("state", "detail"), [
    (PortState.NO_TLS, "speaks no TLS on connect: it answered '220 plain'"),
    (PortState.HANDSHAKE_TIMEOUT, "no answer to the TLS ClientHello on connect within 5 s"),
    (PortState.STARTTLS_REFUSED, "STARTTLS answered '454 4.7.0 TLS not available', not 220"),
    (PortState.UNREACHABLE, "no TCP connection within 5 s"),
])
def test_unscannable_port_is_error_for_every_scan_requirement(state, detail):
    """A port that could not be scanned is one clear error line per requirement, never a pass."""
    bad = scan(state=state, detail=detail, versions=(), certificates=(), vulnerabilities=VulnerabilityResults())
    calls = [(evaluate_no_ssl, bad), (evaluate_legacy_version, bad, "TLSv1.0"), (evaluate_modern, bad, POLICY),
             (evaluate_weak_ciphers, bad, POLICY), (evaluate_cert_trust, bad), (evaluate_cert_hostname, bad),
             (evaluate_cert_expiry, bad, POLICY), (evaluate_cert_key, bad, POLICY), (evaluate_vulnerabilities, bad)]
    for function, *args in calls:
        error = _cannot_judge(function, *args)
        assert detail in str(error) and "\n" not in str(error)
        assert "port 25" in error.evidence  # the scan summary travels with the error


def test_scan_error_after_good_preflight_is_error():
    """sslyze failing on a port that answered the pre-flight is an error for the scan requirements."""
    bad = scan(scan_error="the sslyze scan did not finish within 600 s", versions=(), certificates=())
    _cannot_judge(evaluate_no_ssl, bad)
    assert evaluate_starttls_offered(bad).passed  # the pre-flight proved STARTTLS works


def test_closed_port_is_skipped_with_reason():
    """A closed port is skipped, naming the port and why."""
    closed = scan(port=443, starttls=None, state=PortState.CLOSED, detail="connection refused")
    blocked = check_inputs(closed, "TLS-NO-SSL")
    assert blocked is not None and blocked.outcome is Outcome.SKIPPED
    assert "mail.example.test:443" in blocked.message and "connection refused" in blocked.message


# --- evidence and cross-check observation -------------------------------------------------------------

def test_summary_names_versions_suites_and_certificate():
    """The per-port summary carries versions, suites per version, subject/issuer/SAN/expiry/key."""
    text = describe(WEAK)
    for expected in ("versions accepted: TLSv1.0, TLSv1.1, TLSv1.2, TLSv1.3", "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
                     "subject CN=mail.example.test", "issuer CN=Example CA", "DNS:mail.example.test",
                     "to 2027-09-23", "key RSA 2048 bits", "fallback SCSV yes"):
        assert expected in text, expected


def test_legacy_observation_unions_ports_and_lists_the_unobserved():
    """accepted_versions is the union over observed ports; closed or broken ports are listed apart."""
    scans = [WEAK, scan(port=587), scan(port=443, starttls=None, state=PortState.CLOSED, detail="connection refused"),
             scan(port=993, starttls=None, state=PortState.NO_TLS, detail="speaks no TLS")]
    observation = observe_legacy("mail.example.test", scans)
    assert observation.accepted_versions == frozenset({"TLSv1.0", "TLSv1.1"})
    assert observation.observed_ports == (25, 587)
    assert len(observation.unobserved) == 2 and "speaks no TLS" in observation.transcript
    hardened = observe_legacy("mail.example.test", [scan(), scan(port=465, starttls=None)])
    assert hardened.accepted_versions == frozenset()


def _cannot_judge(function, *args) -> CannotJudge:
    """Call an evaluator that must refuse to judge; return the CannotJudge it raised."""
    with pytest.raises(CannotJudge) as raised:
        function(*args)
    return raised.value
