"""Loopback tests of the TLS probe: the pre-flight against small listeners, certificate summaries and
trust with throwaway certificates, and one real sslyze scan of a local TLS listener. No lab needed."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import hashes, serialization

from mailaudit.probes.tls import (
    ScanSettings,
    TlsEndpoint,
    TrustStoreLoader,
    certificate_summary,
    scan_endpoints,
)
from mailaudit.probes.tls_preflight import PortState, preflight
from selftests.tls_helpers import (
    LISTEN_IP,
    free_port,
    imap_starttls,
    implicit_tls,
    listening,
    make_ca,
    make_leaf,
    plain_smtp,
    pop3_starttls,
    server_context,
    silent,
    smtp_starttls,
    write_pki,
)

HOST = "mail.selftest.test"
TIMEOUT_S = 1


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA and a leaf for HOST and the listen address."""
    return write_pki(tmp_path_factory.mktemp("pki"), [HOST, LISTEN_IP])


def check(port: int, starttls: str | None = None):
    return preflight(LISTEN_IP, port, HOST, starttls, TIMEOUT_S)


# --- pre-flight ------------------------------------------------------------------------------------

def test_closed_port_is_closed():
    """Connection refused is 'closed', with that reason."""
    result = check(free_port())
    assert result.state is PortState.CLOSED and "refused" in result.detail


def test_silent_port_is_a_handshake_timeout():
    """A port that accepts and never answers the ClientHello is a handshake timeout, in one line."""
    with listening(silent) as port:
        result = check(port)
    assert result.state is PortState.HANDSHAKE_TIMEOUT
    assert result.detail == f"no answer to the TLS ClientHello on connect within {TIMEOUT_S} s"


def test_silent_starttls_port_has_no_greeting():
    """On a STARTTLS port, silence is a missing greeting."""
    with listening(silent) as port:
        result = check(port, "smtp")
    assert result.state is PortState.DIALOGUE_FAILED and "no greeting within" in result.detail


def test_plaintext_on_implicit_port_speaks_no_tls():
    """A plaintext SMTP server on an implicit-TLS port 'speaks no TLS', quoting its first line."""
    with listening(plain_smtp) as port:
        result = check(port)
    assert result.state is PortState.NO_TLS
    assert "220 plain.selftest ESMTP no TLS here" in result.detail and "\n" not in result.detail


def test_starttls_not_advertised():
    """An EHLO reply without STARTTLS is 'not offered', listing the keywords seen."""
    with listening(smtp_starttls(advertise=False)) as port:
        result = check(port, "smtp")
    assert result.state is PortState.STARTTLS_NOT_OFFERED and "8BITMIME" in result.detail
    assert "C: EHLO" in result.transcript


def test_starttls_refused():
    """A 454 answer to STARTTLS is 'refused', quoting the answer."""
    with listening(smtp_starttls(answer="454 4.7.0 TLS not available due to local problem")) as port:
        result = check(port, "smtp")
    assert result.state is PortState.STARTTLS_REFUSED and "454 4.7.0" in result.detail


def test_starttls_accepted_then_plaintext_is_no_tls():
    """STARTTLS answered 220 but no TLS after it is 'speaks no TLS after STARTTLS'."""
    def fake(sock):
        sock.sendall(b"220 fake ESMTP\r\n")
        sock.recv(1024)
        sock.sendall(b"250-fake\r\n250 STARTTLS\r\n")
        sock.recv(1024)
        sock.sendall(b"220 go ahead\r\n")
        sock.recv(1024)
        sock.sendall(b"500 what is this\r\n")
    with listening(fake) as port:
        result = check(port, "smtp")
    assert result.state is PortState.NO_TLS and "after STARTTLS" in result.detail


@pytest.mark.parametrize(("behaviour", "protocol"), [
    (smtp_starttls, "smtp"), (imap_starttls, "imap"), (pop3_starttls, "pop3")])
def test_starttls_dialogues_complete_a_handshake(pki, behaviour, protocol):
    """SMTP, IMAP and POP3 STARTTLS dialogues end in a TLS handshake."""
    with listening(behaviour(server_context(pki))) as port:
        result = check(port, protocol)
    assert result.state is PortState.OPEN, result.detail
    assert result.negotiated.startswith("TLSv1.")


@pytest.mark.parametrize(("behaviour", "protocol"), [(imap_starttls, "imap"), (pop3_starttls, "pop3")])
def test_imap_pop3_without_starttls_capability(behaviour, protocol):
    """IMAP CAPABILITY / POP3 CAPA without STARTTLS/STLS is 'not offered'."""
    with listening(behaviour(None, advertise=False)) as port:
        result = check(port, protocol)
    assert result.state is PortState.STARTTLS_NOT_OFFERED


def test_implicit_tls_handshake(pki):
    """Implicit TLS completes on connect."""
    with listening(implicit_tls(server_context(pki))) as port:
        result = check(port)
    assert result.state is PortState.OPEN and "on connect" in result.detail


# --- certificates and trust ------------------------------------------------------------------------

def test_trust_and_summary_of_a_ca_signed_leaf(pki):
    """A leaf from the configured CA is trusted; the summary has subject, issuer, SAN, key, hash."""
    summary = certificate_summary([pki.leaf], HOST, TrustStoreLoader(pki.ca_file))
    assert summary.trust.trusted, summary.trust.detail
    assert summary.san_dns == (HOST,) and summary.san_ip == (LISTEN_IP,)
    assert summary.key_type == "RSA" and summary.key_bits == 2048
    assert summary.signature_hashes[0][1] == "sha256" and not summary.self_signed


def test_self_signed_leaf_is_not_trusted(pki, tmp_path):
    """A self-signed certificate outside the store is untrusted, and said to be self-signed."""
    leaf, _ = make_leaf(None, [HOST])
    summary = certificate_summary([leaf], HOST, TrustStoreLoader(pki.ca_file))
    assert summary.trust.trusted is False and "self-signed" in summary.trust.detail and summary.self_signed


def test_wrong_name_is_still_trusted_and_expired_is_checked_at_its_expiry(pki):
    """Trust is judged apart from the name and the date (those are other requirements)."""
    ca = make_ca()
    ca_file = pki.ca_file.parent / "other-ca.pem"
    ca_file.write_bytes(ca[0].public_bytes(serialization.Encoding.PEM))
    wrong, _ = make_leaf(ca, ["wrong.example.org"])
    assert certificate_summary([wrong], HOST, TrustStoreLoader(ca_file)).trust.trusted
    expired, _ = make_leaf(ca, [HOST], days=-2)
    summary = certificate_summary([expired], HOST, TrustStoreLoader(ca_file))
    assert summary.trust.trusted and "as of its expiry date" in summary.trust.detail
    assert summary.not_after < dt.datetime.now(dt.UTC)


def test_small_key_and_signature_hash_are_reported(pki):
    """The key size and each certificate's signature hash show in the summary (judged by TLS-CERT-KEY)."""
    weak, _ = make_leaf(make_ca(), [HOST], bits=1024, hash_algorithm=hashes.SHA384())
    summary = certificate_summary([weak], HOST, TrustStoreLoader(pki.ca_file))
    assert summary.key_bits == 1024 and summary.signature_hashes[0][1] == "sha384"


def test_missing_trust_store_is_undecided(tmp_path):
    """An unreadable trust store leaves trust undecided (an error downstream, never a pass)."""
    loader = TrustStoreLoader(tmp_path / "none.pem")
    leaf, _ = make_leaf(make_ca(), [HOST])
    result = certificate_summary([leaf], HOST, loader).trust
    assert result.trusted is None and "cannot load" in result.detail


# --- one real sslyze scan --------------------------------------------------------------------------

def test_sslyze_scan_of_a_local_listener(pki):
    """One Scanner scans a TLS listener and a closed port together: versions, certificate, vulns, JSON."""
    closed = free_port()
    with listening(implicit_tls(server_context(pki))) as port:
        endpoints = [TlsEndpoint(HOST, LISTEN_IP, port, "tls"), TlsEndpoint(HOST, LISTEN_IP, closed, "tls")]
        scans = scan_endpoints(endpoints, ScanSettings(timeout_s=3, retries=1, deadline_s=120,
                                                      ca_file=pki.ca_file))
    good, gone = scans[endpoints[0]], scans[endpoints[1]]
    assert gone.state is PortState.CLOSED and not gone.sslyze_json
    assert good.state is PortState.OPEN and not good.scan_error, good.detail
    assert not good.errors, good.errors
    assert set(good.accepted_versions) == {"TLSv1.2", "TLSv1.3"}
    assert good.certificates and good.certificates[0].trust.trusted
    assert good.vulnerabilities.heartbleed is False and good.vulnerabilities.compression is False
    assert '"tls_1_3_cipher_suites"' in good.sslyze_json


# --- a scan that fails once is run again, and says so ----------------------------------------------

@pytest.mark.parametrize("retries", [1, 0])
def test_failed_scan_is_retried_once(pki, monkeypatch, retries):
    """A port that drops every connection during the first sslyze pass is scanned again (retried
    commands named); with command_retries=0 the failure stays an error, never a pass."""
    import mailaudit.probes.tls as probe

    broken = {"now": False}

    def flaky(sock):
        if broken["now"]:
            sock.close()
            return
        implicit_tls(server_context(pki))(sock)

    real = probe._run_sslyze
    calls = []

    def first_pass_breaks(jobs, settings, deadline_s):
        broken["now"] = not calls
        calls.append(len(jobs))
        try:
            return real(jobs, settings, deadline_s)
        finally:
            broken["now"] = False

    monkeypatch.setattr(probe, "_run_sslyze", first_pass_breaks)
    with listening(flaky) as port:
        endpoint = TlsEndpoint(HOST, LISTEN_IP, port, "tls")
        scan = scan_endpoints([endpoint], ScanSettings(timeout_s=3, retries=1, deadline_s=120,
                                                       command_retries=retries, ca_file=pki.ca_file))[endpoint]
    assert scan.state is PortState.OPEN
    if retries:
        assert len(calls) == 2 and not scan.scan_error and not scan.errors, (scan.scan_error, scan.errors)
        assert "certificate_info" in scan.retried and set(scan.accepted_versions) == {"TLSv1.2", "TLSv1.3"}
    else:
        assert len(calls) == 1 and scan.scan_error and not scan.versions
