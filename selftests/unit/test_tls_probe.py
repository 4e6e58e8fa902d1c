"""Loopback tests of the TLS probe: the pre-flight against small listeners, certificate summaries and
trust with throwaway certificates, and one real sslyze scan of a local TLS listener. No lab needed."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from sslyze import ScanCommand

from mailaudit.errors import CannotJudge
from mailaudit.evaluate.tls import check_inputs
from mailaudit.probes.tls import (
    ScanSettings,
    TlsEndpoint,
    TrustStoreLoader,
    certificate_summary,
)
from mailaudit.probes.tls_preflight import PortState, preflight
from mailaudit.probes.tls_runner import JobRunner
from mailaudit.probes.tls_scan import connection_limits, scan_endpoints
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
def test_failed_command_is_run_again_once(pki, monkeypatch, retries):
    """A scan command that ended in an error (here the certificate command's first run) is run again
    and named as retried; with command_retries=0 it stays an error, never a pass."""
    import mailaudit.probes.tls_scan as scan_module

    real, calls = scan_module.attempt_from_jobs, []

    def first_run_fails(command, info, results):
        calls.append(command)
        if command is ScanCommand.CERTIFICATE_INFO and calls.count(command) == 1:
            return scan_module.attempt_for_error(command, TimeoutError("connection lost"))
        return real(command, info, results)

    monkeypatch.setattr(scan_module, "attempt_from_jobs", first_run_fails)
    with listening(implicit_tls(server_context(pki))) as port:
        endpoint = TlsEndpoint(HOST, LISTEN_IP, port, "tls")
        scan = scan_endpoints([endpoint], ScanSettings(timeout_s=3, retries=1, deadline_s=120,
                                                       command_retries=retries, ca_file=pki.ca_file))[endpoint]
    assert scan.state is PortState.OPEN and set(scan.accepted_versions) == {"TLSv1.2", "TLSv1.3"}
    if retries:
        assert calls.count(ScanCommand.CERTIFICATE_INFO) == 2 and scan.retried == ("certificate_info",)
        assert not scan.errors and scan.certificates and scan.certificates[0].trust.trusted
    else:
        assert calls.count(ScanCommand.CERTIFICATE_INFO) == 1 and not scan.retried
        assert scan.error("certificate_info") and not scan.certificates


def test_a_lost_connection_does_not_make_a_version_refused(pki):
    """A server that closes the connection on its first two TLS 1.2 ClientHellos (then answers
    again) is not taken to refuse TLS 1.2: a refusal without an alert is asked again before it
    counts, and the version's suites are found as on a server that never lost one."""
    context, closed, lock = server_context(pki), [0], threading.Lock()

    def loses_tls12_hellos(sock):
        hello = sock.recv(4096, socket.MSG_PEEK)
        tls12_only = hello[:1] == b"\x16" and hello[9:11] == b"\x03\x03" and b"\x00\x2b" not in hello[43:]
        with lock:
            lose = tls12_only and closed[0] < 2
            closed[0] += lose
        if lose:
            sock.close()
            return
        implicit_tls(context)(sock)

    with listening(loses_tls12_hellos) as flaky, listening(implicit_tls(context)) as steady:
        scans = {}
        for port in (flaky, steady):
            endpoint = TlsEndpoint(HOST, LISTEN_IP, port, "tls")
            scans[port] = scan_endpoints([endpoint], ScanSettings(timeout_s=3, retries=1, deadline_s=120,
                                                                 command_retries=0, ca_file=pki.ca_file))[endpoint]
    assert closed[0] == 2
    lost, kept = scans[flaky], scans[steady]
    assert not lost.scan_error and not lost.errors, (lost.scan_error, lost.errors)
    assert {s.name for s in lost.version("TLSv1.2").accepted} == {s.name for s in kept.version("TLSv1.2").accepted}
    assert lost.version("TLSv1.2").accepted and "repeated to confirm" in lost.suite_note


def test_a_port_silent_after_the_preflight_ends_at_the_deadline_as_an_error(pki):
    """Once the pre-flight got its handshake, the port answers nothing more: the scan stops at the
    server's deadline (tls.scan_deadline_s) and every requirement of the port is an error there."""
    context, seen, lock = server_context(pki), [0], threading.Lock()

    def then_silent(sock):
        with lock:
            seen[0] += 1
            first = seen[0] == 1
        if first:
            implicit_tls(context)(sock)
        else:
            silent(sock)

    with listening(then_silent) as port:
        endpoint = TlsEndpoint(HOST, LISTEN_IP, port, "tls")
        started = time.monotonic()
        scan = scan_endpoints([endpoint], ScanSettings(timeout_s=1, retries=1, deadline_s=2,
                                                       ca_file=pki.ca_file))[endpoint]
    assert time.monotonic() - started < 10
    assert scan.state is PortState.OPEN and not scan.versions
    assert "did not finish within 2 s (policy tls.scan_deadline_s)" in scan.scan_error
    with pytest.raises(CannotJudge, match=r"tls\.scan_deadline_s"):
        check_inputs(scan, "TLS-NO-LEGACY-TLS", "TLSv1.0")


# --- one enumeration per TLS stack ----------------------------------------------------------------

RICH_TLS12 = ("ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA384:"
              "ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA:ECDHE-RSA-AES128-SHA:AES256-GCM-SHA384:"
              "AES128-GCM-SHA256:AES256-SHA:AES128-SHA")


def _context(pki, ciphers: str):
    context = server_context(pki)
    context.set_ciphers(ciphers)
    return context


def test_ports_with_the_same_stack_share_one_enumeration_and_others_do_not(pki):
    """Three ports of one server, the same certificate: two with the same cipher configuration, one
    that lacks the server's least preferred suite. The twin adopts the first port's enumeration
    (and says so); the other one answers a check differently and is enumerated itself, so its
    missing suite is not claimed for it."""
    fewer = RICH_TLS12.rsplit(":", 1)[0]
    with listening(implicit_tls(_context(pki, RICH_TLS12))) as first, \
            listening(implicit_tls(_context(pki, fewer))) as subset, \
            listening(implicit_tls(_context(pki, RICH_TLS12))) as twin:
        endpoints = [TlsEndpoint(HOST, LISTEN_IP, p, "tls") for p in (first, subset, twin)]
        scans = scan_endpoints(endpoints, ScanSettings(timeout_s=3, retries=1, deadline_s=120, ca_file=pki.ca_file))
    lead, other, copy = (scans[e] for e in endpoints)
    tls12 = {name: {s.name for s in scans[e].version("TLSv1.2").accepted} for name, e in
             zip(("lead", "other", "copy"), endpoints, strict=True)}
    assert "TLS_RSA_WITH_AES_128_CBC_SHA" in tls12["lead"] and tls12["copy"] == tls12["lead"]
    assert tls12["other"] == tls12["lead"] - {"TLS_RSA_WITH_AES_128_CBC_SHA"}
    assert f"enumerated on port {first} by elimination" in lead.suite_note
    assert f"enumerated on port {first}: port {twin} presents the same TLS stack" in copy.suite_note
    assert f"enumerated on port {subset} by elimination" in other.suite_note
    assert copy.certificates and not copy.errors and copy.vulnerabilities.compression is False


# --- servers at once, each within its limits ------------------------------------------------------

SECOND_IP = "127.0.0.32"


def test_servers_are_scanned_at_once_each_within_its_limit(pki):
    """Two servers (two addresses, two ports each) in one scan: connections to both are open at the
    same time, never more than run.max_connections_per_server to one address nor
    run.max_connections_total in all (pre-flights included); both are fully scanned."""
    settings = ScanSettings(timeout_s=3, retries=1, deadline_s=120, ca_file=pki.ca_file, connections_per_port=2,
                            concurrent_ports=2, max_connections_per_server=3, max_connections_total=4)
    runner = JobRunner(connection_limits(settings))
    context = server_context(pki)
    with listening(implicit_tls(context)) as a1, listening(implicit_tls(context)) as a2, \
            listening(implicit_tls(context), SECOND_IP) as b1, listening(implicit_tls(context), SECOND_IP) as b2:
        endpoints = [TlsEndpoint(HOST, LISTEN_IP, a1, "tls"), TlsEndpoint(HOST, LISTEN_IP, a2, "tls"),
                     TlsEndpoint("other.selftest.test", SECOND_IP, b1, "tls"),
                     TlsEndpoint("other.selftest.test", SECOND_IP, b2, "tls")]
        scans = scan_endpoints(endpoints, settings, runner)
    assert all(set(s.accepted_versions) == {"TLSv1.2", "TLSv1.3"} for s in scans.values())
    assert runner.peak_per_server[LISTEN_IP] <= 3 and runner.peak_per_server[SECOND_IP] <= 3
    assert runner.peak_total == 4  # more than one address's limit: both servers at once
    assert all(runner.jobs[(e.ip, e.port)] >= 10 for e in endpoints)
