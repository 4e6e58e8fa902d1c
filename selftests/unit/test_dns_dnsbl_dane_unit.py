"""Blocklist return codes and DANE matching, offline."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from mailaudit.evaluate.dns import (
    Tlsa,
    classify_dnsbl_answer,
    dnsbl_zone_problem,
    evaluate_dane,
    evaluate_dnsbl,
    tlsa_matches,
)
from mailaudit.policy import DnsblZone, load_policy
from mailaudit.probes.dns import Answer, DaneHost, DaneProbe, DnsblLookup, DnsblProbe, PresentedChain, dnsbl_name

BASELINE = load_policy(Path(__file__).resolve().parents[2] / "policies" / "baseline.yaml").dns
SPAMHAUS = next(z for z in BASELINE.dnsbl_zones if z.zone == "zen.spamhaus.org")
PLAIN = DnsblZone("bl.example.test")


# --- blocklists -------------------------------------------------------------------------------

@pytest.mark.parametrize(("answer", "kind"), [
    ((), "clean"),
    (("127.0.0.2",), "listed"),
    (("127.0.0.4", "127.0.0.10"), "listed"),
    (("127.255.255.254",), "error"),  # query through a public resolver: refused
    (("127.255.255.252",), "error"),  # typing error in the zone name
    (("127.255.255.255",), "error"),  # excessive number of queries
    (("127.0.0.8",), "unknown"),  # not a code Spamhaus documents
    (("192.0.2.1",), "error"),  # outside 127/8: a hijacked or wildcard answer
    (("127.0.0.2", "127.255.255.254"), "error"),  # an error code wins over a listing
])
def test_spamhaus_return_codes(answer, kind):
    """Per-zone interpretation: Spamhaus 127.255.255.x means the query failed, not a listing."""
    assert classify_dnsbl_answer(answer, SPAMHAUS)[0] == kind


def test_default_zone_reads_any_127_answer_as_listed():
    """A zone without documented codes: any 127/8 answer is a listing (RFC 5782 §2.1)."""
    assert classify_dnsbl_answer(("127.0.0.3",), PLAIN)[0] == "listed"


def test_dnsbl_names_per_rfc_5782():
    """IPv4 octets and IPv6 nibbles reversed under the zone."""
    assert dnsbl_name("192.0.2.99", "bl.test") == "99.2.0.192.bl.test"
    assert dnsbl_name("2001:db8::1", "bl.test").startswith("1.0.0.0.0.0.0.0")
    assert dnsbl_name("2001:db8::1", "bl.test").endswith("8.b.d.0.1.0.0.2.bl.test")


def _lookup(ip: str, *addresses: str, txt: tuple[str, ...] = ()) -> DnsblLookup:
    a = Answer(f"{ip}.bl", "A", "NOERROR" if addresses else "NXDOMAIN", addresses)
    return DnsblLookup(ip, a, Answer(f"{ip}.bl", "TXT", "NOERROR", txt) if addresses else None)


def _dnsbl(test_listed=("127.0.0.2",), test_clean=(), server=()) -> DnsblProbe:
    return DnsblProbe("bl.example.test", _lookup("127.0.0.2", *test_listed), _lookup("127.0.0.1", *test_clean),
                      (_lookup("192.0.2.25", *server, txt=("spam source",)),))


def test_zone_problems_come_from_the_test_entries_first():
    """A dead zone, a refusing zone, a wildcard zone: each is a problem (an error for that zone)."""
    assert dnsbl_zone_problem(_dnsbl(), PLAIN) is None
    assert "not listed" in dnsbl_zone_problem(_dnsbl(test_listed=()), PLAIN)
    assert "error code" in dnsbl_zone_problem(_dnsbl(test_listed=("127.255.255.254",)), SPAMHAUS)
    assert "must not be listed" in dnsbl_zone_problem(_dnsbl(test_clean=("127.0.0.2",)), PLAIN)
    refused = _dnsbl(server=("127.255.255.254",))
    assert "lookup of 192.0.2.25" in dnsbl_zone_problem(refused, SPAMHAUS)


def test_listing_fails_with_the_reason_and_clean_passes():
    """A listed server fails with the list's TXT reason; an unknown code is inconclusive."""
    assert evaluate_dnsbl(_dnsbl(), PLAIN).passed
    listed = evaluate_dnsbl(_dnsbl(server=("127.0.0.2",)), PLAIN)
    assert not listed.passed and "192.0.2.25 listed (127.0.0.2)" in listed.message
    assert "spam source" in listed.message
    assert evaluate_dnsbl(_dnsbl(server=("127.0.0.8",)), SPAMHAUS).outcome.value == "inconclusive"


def test_policy_default_list_never_points_at_the_lab():
    """The baseline lists public blocklists; the lab's zones come only from the lab policy."""
    zones = {z.zone for z in BASELINE.dnsbl_zones}
    assert "zen.spamhaus.org" in zones and not any(z.endswith(".test") for z in zones)


# --- DANE -------------------------------------------------------------------------------------

def _cert(name: str, issuer_key=None, issuer_name: str | None = None) -> tuple[bytes, object]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name or name)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1)))
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    return cert.public_bytes(Encoding.DER), key


def _spki_hash(der: bytes) -> str:
    spki = x509.load_der_x509_certificate(der).public_key().public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


CA_DER, CA_KEY = _cert("Lab CA")
LEAF_DER, _ = _cert("mail.example.test", CA_KEY, "Lab CA")
CHAIN = (LEAF_DER, CA_DER)


def test_tlsa_usages_and_selectors():
    """3 1 1 matches the leaf's SPKI; 3 0 1 the whole leaf; 2 1 1 the issuer; 0/1 are unusable."""
    assert tlsa_matches(Tlsa.parse(f"3 1 1 {_spki_hash(LEAF_DER)}"), CHAIN)
    assert tlsa_matches(Tlsa.parse(f"3 0 1 {hashlib.sha256(LEAF_DER).hexdigest()}"), CHAIN)
    assert tlsa_matches(Tlsa.parse(f"2 1 1 {_spki_hash(CA_DER)}"), CHAIN)
    assert not tlsa_matches(Tlsa.parse(f"3 1 1 {_spki_hash(CA_DER)}"), CHAIN)
    assert not tlsa_matches(Tlsa.parse(f"1 1 1 {_spki_hash(LEAF_DER)}"), CHAIN)
    sha512 = hashlib.sha512(x509.load_der_x509_certificate(LEAF_DER).public_key().public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).hexdigest()
    assert tlsa_matches(Tlsa.parse(f"3 1 2 {sha512[:64]} {sha512[64:]}"), CHAIN)


def _dane(tlsa: tuple[str, ...], secure: bool = True, mx_secure: bool = True, signed: bool = True) -> DaneProbe:
    mx = Answer("example.test", "MX", "NOERROR", ("10 mail.example.test.",), mx_secure, signed)
    host = DaneHost("mail.example.test", Answer("_25._tcp.mail.example.test", "TLSA",
                                                  "NOERROR" if tlsa else "NXDOMAIN", tlsa, secure, signed))
    return DaneProbe("example.test", mx, (host,), PresentedChain("192.0.2.25:25", CHAIN) if tlsa else None)


def test_dane_verdicts():
    """Secure and matching passes; mismatch or insecure fails; no TLSA is not applicable."""
    good = f"3 1 1 {_spki_hash(LEAF_DER)}"
    assert evaluate_dane(_dane((good,))).passed
    mismatch = evaluate_dane(_dane(("3 1 1 " + "00" * 32,)))
    assert not mismatch.passed and "matches the certificate" in mismatch.message
    unsigned = evaluate_dane(_dane((good,), secure=False, mx_secure=False, signed=False))
    assert not unsigned.passed and "not DNSSEC-signed" in unsigned.message and "MX RRset" in unsigned.message
    assert evaluate_dane(_dane(())).outcome.value == "skipped"


def test_dane_through_a_non_validating_resolver_is_inconclusive():
    """Signatures present but AD clear: the resolver does not validate, so DANE cannot be decided."""
    evaluation = evaluate_dane(_dane((f"3 1 1 {_spki_hash(LEAF_DER)}",), secure=False, mx_secure=False))
    assert evaluation.outcome.value == "inconclusive" and "validating resolver" in evaluation.message
