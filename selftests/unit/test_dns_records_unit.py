"""DMARC, DKIM, MX, PTR, MTA-STS and TLS-RPT verdicts, offline, from constructed probe results."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mailaudit.evaluate.dns import (
    evaluate_dkim,
    evaluate_dmarc_policy,
    evaluate_dmarc_record,
    evaluate_dmarc_reporting,
    evaluate_mta_sts,
    evaluate_mx,
    evaluate_ptr,
    evaluate_tlsrpt,
    mx_matches_pattern,
    parse_dkim_record,
)
from mailaudit.policy import load_policy
from mailaudit.probes.dns import (
    Answer,
    DmarcProbe,
    DmarcRecordCheck,
    HttpsFetch,
    MtaStsProbe,
    MxHost,
    MxProbe,
    PtrProbe,
    ReportDestination,
)

POLICY = load_policy(Path(__file__).resolve().parents[2] / "policies" / "baseline.yaml").dns


# --- DMARC ------------------------------------------------------------------------------------

def _dmarc(record: str, rua=()) -> DmarcRecordCheck:
    return DmarcRecordCheck.of(record, tuple(rua))


def _dmarc_probe(*checks: DmarcRecordCheck) -> DmarcProbe:
    answer = Answer("_dmarc.example.test", "TXT", "NOERROR" if checks else "NXDOMAIN",
                    tuple(c.record for c in checks))
    return DmarcProbe("example.test", "example.test", answer, checks)


def test_dmarc_record_count_and_validity():
    """None or two records fail; an invalid record fails naming the tag; one valid passes."""
    good = _dmarc("v=DMARC1; p=reject")
    assert evaluate_dmarc_record(_dmarc_probe(good)).passed
    assert "found none" in evaluate_dmarc_record(_dmarc_probe()).message
    assert "found 2" in evaluate_dmarc_record(_dmarc_probe(good, _dmarc("v=DMARC1; p=none"))).message
    bad = evaluate_dmarc_record(_dmarc_probe(_dmarc("v=DMARC1; p=maybe")))
    assert not bad.passed and "invalid" in bad.message and "p=maybe: must be none, quarantine or reject" in bad.message


@pytest.mark.parametrize(("record", "ok", "named"), [
    ("v=DMARC1; p=reject", True, ""),
    ("v=DMARC1; p=quarantine; pct=100", True, ""),
    ("v=DMARC1; p=none", False, "p=none"),
    ("v=DMARC1; p=reject; sp=none", False, "sp=none"),
    ("v=DMARC1; p=quarantine; pct=50", False, "pct=50"),
])
def test_dmarc_policy_minimum_sp_and_pct(record, ok, named):
    """p and sp at least quarantine, pct 100."""
    evaluation = evaluate_dmarc_policy(_dmarc_probe(_dmarc(record)), POLICY)
    assert evaluation.passed is ok
    assert named in evaluation.message


def test_dmarc_policy_strict_profile_wants_reject():
    """A profile with minimum reject fails quarantine."""
    strict = dataclasses.replace(POLICY, dmarc_min_policy="reject")
    assert not evaluate_dmarc_policy(_dmarc_probe(_dmarc("v=DMARC1; p=quarantine")), strict).passed


def test_dmarc_reporting_needs_rua_and_authorized_external_destinations():
    """No rua fails; an unauthorized external destination fails naming the record to publish."""
    internal = ReportDestination("mailto:d@example.test", "d@example.test", "example.test", False, None)
    ok_ext = ReportDestination("mailto:d@rep.test", "d@rep.test", "rep.test", True, True)
    bad_ext = ReportDestination("mailto:d@evil.test", "d@evil.test", "evil.test", True, False)
    assert evaluate_dmarc_reporting(_dmarc_probe(_dmarc("v=DMARC1; p=reject", rua=[internal, ok_ext]))).passed
    assert "no rua" in evaluate_dmarc_reporting(_dmarc_probe(_dmarc("v=DMARC1; p=reject"))).message
    evaluation = evaluate_dmarc_reporting(_dmarc_probe(_dmarc("v=DMARC1; p=reject", rua=[bad_ext])))
    assert not evaluation.passed and "example.test._report._dmarc.evil.test" in evaluation.message


@pytest.mark.parametrize(("records", "named"), [
    (("v=DMARC1; p=reject; rua=mailto:d@example.test", "v=DMARC1; p=reject; rua=mailto:e@example.test"),
     "2 DMARC records|found 2"),
    (("v=DMARC1; p=reject; rua=mailto:d@example.test; adkim=x",), "adkim=x: must be r or s"),
    (("v=DMARC1; p=reject; pct=¹⁰⁰; rua=mailto:d@example.test",), "pct=¹⁰⁰"),
])
def test_no_dmarc_requirement_passes_on_duplicate_or_invalid_records(records, named):
    """Two records, an invalid tag, superscript digits in pct, p out of place: RECORD, POLICY and
    REPORTING all fail (no DMARC policy is enforced, no report assured), naming the problem; none
    raises a ValueError."""
    internal = ReportDestination("mailto:d@example.test", "d@example.test", "example.test", False, None)
    probe = _dmarc_probe(*(_dmarc(r, rua=[internal]) for r in records))
    for evaluation in (evaluate_dmarc_record(probe), evaluate_dmarc_policy(probe, POLICY),
                       evaluate_dmarc_reporting(probe)):
        assert evaluation.outcome.value == "failed", evaluation.message
        assert any(text in evaluation.message for text in named.split("|")), evaluation.message


def test_dmarc_policy_cites_its_policy_leaves():
    """DMARC-POLICY names dns.dmarc_min_policy and dns.dmarc_min_pct; DKIM its minimum key size."""
    evaluation = evaluate_dmarc_policy(_dmarc_probe(_dmarc("v=DMARC1; p=reject")), POLICY)
    assert evaluation.policy_keys == ("dns.dmarc_min_policy", "dns.dmarc_min_pct")
    assert evaluate_dkim("s", _dkim_answer(), POLICY).policy_keys == ("dns.dkim_min_rsa_bits",)


# --- DKIM -------------------------------------------------------------------------------------

def _rsa_record(bits: int) -> str:
    if bits < 1024:  # cryptography refuses to generate these; a public modulus of that size is enough
        key = rsa.RSAPublicNumbers(65537, (1 << (bits - 1)) | 0xF1).public_key()
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits).public_key()
    der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def _dkim_answer(*records: str) -> Answer:
    return Answer("s._domainkey.example.test", "TXT", "NOERROR" if records else "NXDOMAIN", records)


@pytest.mark.parametrize(("bits", "ok"), [(2048, True), (1024, False)])
def test_dkim_rsa_size_against_the_policy(bits, ok):
    """RSA keys are measured from the key; below the policy's 2048 fails."""
    evaluation = evaluate_dkim("s", _dkim_answer(_rsa_record(bits)), POLICY)
    assert evaluation.passed is ok and f"{bits} bits" in evaluation.message


def test_dkim_512_bit_key_cites_rfc_8301():
    """Under 1024 bits is forbidden outright, whatever the policy."""
    lenient = dataclasses.replace(POLICY, dkim_min_rsa_bits=512)
    evaluation = evaluate_dkim("s", _dkim_answer(_rsa_record(512)), lenient)
    assert not evaluation.passed and "RFC 8301" in evaluation.message


def test_dkim_parse_variants():
    """ed25519, revoked, not base64, wrong version, no key: each parsed and judged."""
    raw = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert parse_dkim_record(f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}").bits == 256
    assert parse_dkim_record("v=DKIM1; p=").revoked
    assert "base64" in parse_dkim_record("v=DKIM1; p=***").error
    assert "DKIM1" in parse_dkim_record("v=DKIM2; p=AAAA").error
    split = _rsa_record(2048).replace("p=", "p= ", 1)  # whitespace inside p= is allowed (RFC 6376 §3.2)
    assert parse_dkim_record(split).bits == 2048
    assert "found none" in evaluate_dkim("s", _dkim_answer(), POLICY).message


# --- MX and PTR -------------------------------------------------------------------------------

def _mx(*hosts: MxHost) -> MxProbe:
    records = tuple(f"{h.preference} {h.name}." for h in hosts)
    return MxProbe("example.test", Answer("example.test", "MX", "NOERROR" if hosts else "NODATA", records), hosts)


def test_mx_verdicts():
    """Reaching the server passes; dangling, alias, missing server, no MX fail; null MX is skipped."""
    good = MxHost(10, "mx.example.test", ("192.0.2.25",))
    assert evaluate_mx(_mx(good), "192.0.2.25").passed
    dangling = evaluate_mx(_mx(good, MxHost(20, "old.example.test", ())), "192.0.2.25")
    assert "dangling MX" in dangling.message
    alias = evaluate_mx(_mx(MxHost(10, "mx.example.test", ("192.0.2.25",), "real.example.test")), "192.0.2.25")
    assert "CNAME" in alias.message
    assert "not the address of any MX host" in evaluate_mx(_mx(good), "192.0.2.99").message
    assert "found none" in evaluate_mx(_mx(), "192.0.2.25").message
    assert evaluate_mx(_mx(MxHost(0, ".", ())), "192.0.2.25").outcome.value == "skipped"


def test_ptr_requires_forward_confirmation():
    """A PTR whose name points elsewhere fails; no PTR fails; a confirmed name passes."""
    def ptr(ip, names, forward):
        return PtrProbe(ip, Answer("x.in-addr.arpa", "PTR", "NOERROR" if names else "NXDOMAIN", names), forward)
    good = ptr("192.0.2.25", ("mx.example.test.",), (("mx.example.test", ("192.0.2.25",)),))
    bad = ptr("192.0.2.26", ("dsl.example.test.",), (("dsl.example.test", ("192.0.2.99",)),))
    assert evaluate_ptr([good]).passed
    evaluation = evaluate_ptr([good, bad])
    assert not evaluation.passed and "no name resolves back to 192.0.2.26" in evaluation.message
    assert "no PTR" in evaluate_ptr([ptr("192.0.2.27", (), ())]).message


# --- MTA-STS and TLS-RPT ----------------------------------------------------------------------

@pytest.mark.parametrize(("host", "pattern", "ok"), [
    ("mail.example.test", "mail.example.test", True),
    ("mail.example.test", "*.example.test", True),
    ("a.b.example.test", "*.example.test", False),
    ("xmail.example.test", "mail.example.test", False),
    ("MAIL.example.test.", "mail.example.test", True),
])
def test_mx_pattern_matching_per_rfc_8461(host, pattern, ok):
    """Exact names, or a wildcard for exactly one leftmost label."""
    assert mx_matches_pattern(host, pattern) is ok


def _sts(body: str, mode_txt: str = "v=STSv1; id=1", status: int = 200, ctype: str = "text/plain",
         error: str | None = None, mx=("mail.example.test",)) -> MtaStsProbe:
    txt = Answer("_mta-sts.example.test", "TXT", "NOERROR" if mode_txt else "NXDOMAIN",
                 (mode_txt,) if mode_txt else ())
    fetch = HttpsFetch("https://mta-sts.example.test/.well-known/mta-sts.txt", "192.0.2.80", status, ctype,
                       body, error)
    return MtaStsProbe("example.test", txt, fetch if mode_txt else None, mx)


ENFORCE = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.test\r\nmax_age: 604800\r\n"


def test_mta_sts_verdicts():
    """Enforce covering every MX passes; testing mode, uncovered MX, no TXT, bad fetch each fail."""
    assert evaluate_mta_sts(_sts(ENFORCE), POLICY).passed
    testing = evaluate_mta_sts(_sts(ENFORCE.replace("enforce", "testing")), POLICY)
    assert "mode is testing" in testing.message
    uncovered = evaluate_mta_sts(_sts(ENFORCE, mx=("mail.example.test", "mx2.example.test")), POLICY)
    assert "mx2.example.test" in uncovered.message and not uncovered.passed
    assert "no v=STSv1" in evaluate_mta_sts(_sts(ENFORCE, mode_txt=""), POLICY).message
    assert "HTTP 404" in evaluate_mta_sts(_sts("", status=404), POLICY).message
    assert "text/plain" in evaluate_mta_sts(_sts(ENFORCE, ctype="text/html"), POLICY).message
    assert "certificate" in evaluate_mta_sts(_sts("", error="certificate not valid for x"), POLICY).message
    assert "invalid" in evaluate_mta_sts(_sts("version: STSv1\r\nmode: sometimes\r\n"), POLICY).message


@pytest.mark.parametrize(("body", "named"), [
    ("mode: enforce\r\nmx: mail.example.test\r\nmax_age: 604800\r\n", "version must be STSv1"),
    ("version: STSv1\r\nmode: enforce\r\nmx: mail.example.test\r\n", "max_age"),
    ("version: STSv1\r\nmode: enforce\r\nmx: mail.example.test\r\nmax_age: ³\r\n", "max_age"),
    ("version: STSv1\r\nmode: enforce\r\nmax_age: 86400\r\n", "needs at least one mx"),
    ("version: STSv1\r\nmode: enforce\r\nmode: testing\r\nmx: mail.example.test\r\nmax_age: 1\r\n",
     "mode appears 2 times"),
])
def test_mta_sts_policy_is_parsed_strictly(body, named):
    """RFC 8461 §3.2: version, mode and max_age (ASCII digits) are required once, mx for enforce;
    checkdmarc accepted each of these bodies."""
    evaluation = evaluate_mta_sts(_sts(body), POLICY)
    assert not evaluation.passed and named in evaluation.message


def test_mta_sts_record_needs_one_valid_id():
    """RFC 8461 §3.1: exactly one id of 1-32 letters and digits."""
    evaluation = evaluate_mta_sts(_sts(ENFORCE, mode_txt="v=STSv1; id=2026-11-01"), POLICY)
    assert not evaluation.passed and "id=2026-11-01" in evaluation.message


def test_tlsrpt_verdicts():
    """One valid record passes; none or a record without rua fails."""
    def answer(*records):
        return Answer("_smtp._tls.example.test", "TXT", "NOERROR" if records else "NXDOMAIN", records)
    assert evaluate_tlsrpt("example.test", answer("v=TLSRPTv1; rua=mailto:t@example.test")).passed
    assert "found none" in evaluate_tlsrpt("example.test", answer()).message
    assert not evaluate_tlsrpt("example.test", answer("v=TLSRPTv1;")).passed
    assert "ftp:" in evaluate_tlsrpt("example.test", answer("v=TLSRPTv1; rua=ftp://r.example.test/")).message


def test_probe_mx_reads_null_mx_and_aliases():
    """The MX probe turns ``0 .`` into a null MX and notes a host that is a CNAME."""
    from mailaudit.probes.dns import probe_mx
    from selftests.unit.dns_fakes import FakeClient

    null = probe_mx(FakeClient({("example.test", "MX"): ("0 .",)}), "example.test")
    assert null.null_mx
    client = FakeClient({("example.test", "MX"): ("10 alias.example.test.",),
                         ("alias.example.test", "CNAME"): ("real.example.test.",),
                         ("alias.example.test", "A"): ("192.0.2.25",)})
    probe = probe_mx(client, "example.test")
    assert probe.hosts[0].cname == "real.example.test" and probe.hosts[0].addresses == ("192.0.2.25",)
