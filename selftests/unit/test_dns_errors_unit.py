"""DNS error mapping, offline: SERVFAIL, REFUSED, FORMERR, malformed replies and timeouts are
DnsErrors named for what they are; NXDOMAIN is an answer; the deadline ends a slow probe."""

from __future__ import annotations

import datetime as dt
import random
import socket
import ssl
import threading
import time
from contextlib import suppress
from unittest.mock import patch

import dns.message
import dns.resolver
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID

from mailaudit.budget import Deadline
from mailaudit.errors import BudgetExceeded, ConnectError, DnsError, ProbeError
from mailaudit.probes.dns import DnsClient, DnsSettings, DnsWorkBudget, _PinnedHTTPSConnection, fetch_https
from mailaudit.probes.spf import evaluate_spf_ip, probe_spf
from mailaudit.resolver import DnsServer, make_resolver, resolve_addresses
from selftests.unit.dns_fakes import MisbehavingDnsServer


def _client(port: int, timeout: float = 0.3, retries: int = 1, deadline: Deadline | None = None) -> DnsClient:
    return DnsClient(DnsSettings(DnsServer("127.0.0.1", port), timeout, retries), deadline)


def _garbage(wire: bytes) -> bytes:
    """The query's ID followed by bytes that are no DNS message."""
    return wire[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\xff\xfe"


@pytest.mark.parametrize("rcode", ["SERVFAIL", "REFUSED"])
def test_failing_rcode_is_a_dns_error_naming_query_and_resolver(rcode):
    """A resolver answering SERVFAIL or REFUSED makes the query an error, never an empty answer."""
    with MisbehavingDnsServer(rcode) as server, pytest.raises(DnsError) as caught:
        _client(server.port).query("example.test", "TXT")
    message = str(caught.value)
    assert rcode in message and "example.test TXT" in message and f"127.0.0.1:{server.port}" in message
    assert isinstance(caught.value, ProbeError)


def test_formerr_is_named_a_format_error():
    """FORMERR is named as such (a format error), not as a timeout or a generic failure."""
    with MisbehavingDnsServer("FORMERR") as server, pytest.raises(DnsError) as caught:
        _client(server.port).query("example.test", "MX")
    assert "FORMERR" in str(caught.value) and "format error" in str(caught.value)
    assert "no answer within" not in str(caught.value)


@pytest.mark.parametrize(("name", "reply"), [
    ("garbage after the header", _garbage),
    ("one byte", lambda wire: b"\x00"),
    ("a reply to another question", lambda wire: dns.message.make_response(
        dns.message.make_query("other.test", "A", id=dns.message.from_wire(wire).id)).to_wire()),
])
def test_malformed_reply_is_named_malformed_at_once(name, reply):
    """An unparsable reply is a DnsError saying "malformed answer" as soon as it arrives: not
    "no answer within N s" after waiting out the timeout (dnspython's Resolver drops it)."""
    with MisbehavingDnsServer(None, reply=reply) as server:
        started = time.monotonic()
        with pytest.raises(DnsError) as caught:
            _client(server.port, timeout=2, retries=1).query("example.test", "TXT")
        elapsed = time.monotonic() - started
        asked = server.queries
    assert "malformed answer" in str(caught.value), (name, str(caught.value))
    assert "no answer within" not in str(caught.value)
    assert elapsed < 1 and asked == 1  # not waited out, not retried


def test_random_replies_never_escape_as_anything_but_dns_errors():
    """Fuzz: 300 random replies carrying the query's ID are answers or DnsErrors, never another
    exception (which would be an internal error with a traceback)."""
    rng = random.Random(13)
    with MisbehavingDnsServer(None, reply=lambda wire: wire[:2] + rng.randbytes(rng.randrange(0, 300))) as server:
        client = _client(server.port, timeout=0.5, retries=0)
        for index in range(300):
            try:
                client.query(f"n{index}.example.test", "TXT")
            except DnsError as exc:
                named = ("malformed answer", "no answer within", "TCP, after a truncated")
                assert any(text in str(exc) for text in named), exc


def test_silent_resolver_times_out_after_the_policy_budget():
    """A resolver that never answers is an error after timeout x (retries + 1), with both in the message."""
    with MisbehavingDnsServer(None) as server:
        started = time.monotonic()
        with pytest.raises(DnsError) as caught:
            _client(server.port, timeout=0.3, retries=1).query("example.test", "MX")
        elapsed = time.monotonic() - started
        asked = server.queries
    assert "no answer within 0.6 s (2 tries)" in str(caught.value)
    assert 0.5 <= elapsed < 3
    assert asked >= 2  # the retry really went out


@pytest.mark.parametrize("retries", [0, 3])
def test_deadline_cuts_the_resolver_lifetime_and_names_its_policy_key(retries):
    """With 0.4 s left of the server's DNS budget, a silent resolver (2 s per try) ends the probe
    after about 0.4 s with BudgetExceeded naming dns.server_deadline_s, not as a timeout of the
    resolver (the deadline cut the wait)."""
    budget = DnsWorkBudget(0.4, "DNS probes of mail.example.test")
    with MisbehavingDnsServer(None) as server, budget.running() as deadline:
        started = time.monotonic()
        with pytest.raises(BudgetExceeded) as caught:
            _client(server.port, timeout=2, retries=retries, deadline=deadline).query("example.test", "MX")
        elapsed = time.monotonic() - started
    assert elapsed < 1.0
    assert "dns.server_deadline_s" in str(caught.value) and "deadline of 0.4 s" in str(caught.value)
    assert budget.spent >= 0.35


def test_work_budget_counts_only_time_spent_in_dns_probes():
    """Time between two DNS probes (other families' probes) is not charged to the DNS budget."""
    budget = DnsWorkBudget(1.0, "DNS probes of x")
    with budget.running():
        pass
    time.sleep(0.2)
    with budget.running() as deadline:
        assert deadline.remaining() > 0.95


def test_servfail_inside_an_spf_probe_is_an_error_not_a_missing_record():
    """A failing resolver under the SPF probe raises instead of reporting 'no SPF record'."""
    with MisbehavingDnsServer("SERVFAIL") as server, pytest.raises(DnsError):
        probe_spf(_client(server.port), "example.test")


def test_dns_trouble_under_pyspf_is_a_dns_error():
    """A failing resolver while pyspf evaluates is an error naming the rcode, not an SPF verdict."""
    with MisbehavingDnsServer("SERVFAIL") as server, pytest.raises(DnsError) as caught:
        evaluate_spf_ip(_client(server.port), "example.test", "192.0.2.1", "mail.example.test")
    assert "SERVFAIL" in str(caught.value)


def test_server_name_resolution_names_a_malformed_answer():
    """--server resolution (config) uses the same exchange: a malformed reply is named."""
    with MisbehavingDnsServer(None, reply=_garbage) as server, pytest.raises(DnsError) as caught:
        resolve_addresses(make_resolver(DnsServer("127.0.0.1", server.port), 2), "mail.example.test")
    assert "malformed answer" in str(caught.value)


def test_errors_carry_the_queries_made_before_them():
    """A DnsError raised mid-probe carries the answers gathered so far as partial evidence."""
    with MisbehavingDnsServer("SERVFAIL") as server, pytest.raises(DnsError) as caught:
        client = _client(server.port)
        client.log.append("example.test MX -> NOERROR: 10 mail.example.test.")
        client.query("example.test", "TXT")
    assert "example.test MX -> NOERROR" in caught.value.evidence
    assert dns.resolver  # the module the suite no longer asks through for its own queries


def _self_signed(tmp_path, host: str) -> tuple[str, str]:
    """A certificate for ``host`` and its key, as PEM files (the certificate is its own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(Encoding.PEM))
    key_file.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return str(cert_file), str(key_file)


def test_mta_sts_fetch_from_a_trickling_server_ends_at_its_bound(tmp_path):
    """A policy host that sends its body one byte every 0.2 s (each read well within the socket
    timeout) is cut off after the fetch's total bound (1 s here), as an error naming it."""
    host = "mta-sts.example.test"
    cert_file, key_file = _self_signed(tmp_path, host)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    listener = socket.create_server(("127.0.0.1", 0))

    def trickle() -> None:
        conn, _ = listener.accept()
        with context.wrap_socket(conn, server_side=True) as tls, suppress(OSError):
            tls.recv(4096)
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n")
            for _ in range(50):
                tls.sendall(b"x")
                time.sleep(0.2)

    threading.Thread(target=trickle, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(ConnectError) as caught, \
            patch.object(_PinnedHTTPSConnection, "default_port", listener.getsockname()[1]):
        fetch_https(host, "127.0.0.1", "/.well-known/mta-sts.txt", 1.0, cert_file)
    assert time.monotonic() - started < 2
    assert "no complete answer within 1 s" in str(caught.value)
    listener.close()
