"""End to end: every TLS-* requirement passes on the hardened lab server and fails on the weak one with
the evidence named in the message; bad input (no TLS, STARTTLS refused, a handshake timeout) is an
error or a failure in one clear line, never a pass. The lean scan (version checks, elimination, one
enumeration per TLS stack) finds on every lab port and staged listener exactly what sslyze's
one-suite-per-connection scan finds, with at most 60 connections per port on average.

The weak lab's Postfix and Dovecot stage TLS 1.0/1.1, weak suites and the certificate faults
(10465-10468). What OpenSSL 3 cannot do at all is staged here, on the weak server's address, by
listeners this module starts: a STARTTLS-less SMTP port, an SSL 3.0 server (tlslite-ng) and a server
without secure renegotiation (gnutls-serv).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sslyze import Scanner, ServerScanRequest

from mailaudit.catalog import load_catalog
from mailaudit.policy import load_policy
from mailaudit.probes.tls import VERSION_COMMANDS, ScanSettings, TlsEndpoint, TlsScan, endpoints_for
from mailaudit.probes.tls_scan import scan_endpoints, sslyze_target
from selftests.e2e.lab import REPO, AuditRun, run_suite
from selftests.tls_helpers import (
    gnutls_insecure_renegotiation_server,
    listening,
    plain_smtp,
    silent,
    smtp_starttls,
    tlslite_ssl3_server,
)

TLS_IDS = sorted(i for i in load_catalog() if i.startswith("TLS-"))
BASE_PORTS = (25, 587, 465, 143, 993, 110, 995, 443)
STARTTLS_PORTS = (25, 587, 143, 110)
CERT_PORTS = (10465, 10466, 10467, 10468)
WEAK_IP = "127.0.0.20"
BAD_IP = "127.0.0.31"
LAB_CERTS = REPO / "lab" / "run" / "certs"


def _policy(folder: Path, starttls_smtp_ports: tuple[int, ...], timeout_s: int = 5) -> Path:
    """A policy extending the baseline whose port table also maps the given ports to SMTP STARTTLS."""
    lines = [f"extends: {REPO / 'policies' / 'baseline.yaml'}", "name: tls-selftest", "tls:",
             f"  network_timeout_s: {{value: {timeout_s}, source: selftest}}", "  ports:", "    value:"]
    baseline = [(25, "smtp", "smtp"), (587, "submission", "smtp"), (465, "submissions", None),
                (143, "imap", "imap"), (993, "imaps", None), (110, "pop3", "pop3"), (995, "pop3s", None),
                (443, "https", None)]
    for port, service, starttls in [*baseline, *((p, "smtp", "smtp") for p in starttls_smtp_ports)]:
        lines.append(f"      - {{port: {port}, service: {service}, starttls: {starttls or 'null'}}}")
    lines.append('    source: "selftest: the baseline ports plus the staged listeners"')
    path = folder / "tls-selftest.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _records(run: AuditRun, requirement: str) -> dict[str, dict]:
    return {r["variant"]: r for r in run.verdicts(requirement)}


def _clean(run: AuditRun) -> None:
    """No crash: no INTERNALERROR and no raw traceback (the sslyze JSON evidence may quote some)."""
    output = run.stdout + run.stderr
    raw = [line for line in output.splitlines() if line.startswith(("Traceback (most recent call last)",
                                                                     "INTERNALERROR"))]
    assert not raw, output[-3000:]


# --- the hardened server: everything passes ---------------------------------------------------------

@pytest.mark.lab
@pytest.mark.parametrize("requirement", TLS_IDS)
def test_hardened_server_passes_every_tls_requirement(hardened_run, requirement):
    """On mail.hardened.test every port passes every TLS-* requirement (none skipped, failed or errored)."""
    _clean(hardened_run)
    records = _records(hardened_run, requirement)
    ports = STARTTLS_PORTS if requirement == "TLS-STARTTLS-OFFERED" else BASE_PORTS
    expected = {f"{p}-{v}" for p in ports for v in ("TLSv1.0", "TLSv1.1")} if requirement == "TLS-NO-LEGACY-TLS" \
        else {str(p) for p in ports}
    assert set(records) == expected, sorted(records)
    bad = {v: (r["outcome"], r["message"]) for v, r in records.items() if r["outcome"] != "passed"}
    assert not bad, bad


# --- the weak server: each staged weakness fails its requirement, naming the evidence ---------------

@contextlib.contextmanager
def _staged_weak_listeners() -> Iterator[dict[str, int]]:
    """What Postfix/Dovecot on OpenSSL 3 cannot stage, served on the weak server's address."""
    cert, key = LAB_CERTS / "mail.weak.test.crt", LAB_CERTS / "mail.weak.test.key"
    with contextlib.ExitStack() as stack:
        ports = {"no_starttls": stack.enter_context(listening(smtp_starttls(advertise=False), WEAK_IP))}
        with contextlib.suppress(ImportError):
            ports["ssl3"] = stack.enter_context(tlslite_ssl3_server(cert, key, WEAK_IP))
        with contextlib.suppress(FileNotFoundError):
            ports["no_secure_reneg"] = stack.enter_context(gnutls_insecure_renegotiation_server(cert, key))
        yield ports


@pytest.fixture(scope="module")
def weak_tls(tmp_path_factory) -> tuple[AuditRun, dict[str, int]]:
    """The TLS audit of the weak lab server: service ports, certificate-fault ports, staged listeners."""
    folder = tmp_path_factory.mktemp("weak-tls")
    with _staged_weak_listeners() as staged:
        policy = _policy(folder, (staged["no_starttls"],))
        ports = [*BASE_PORTS, *CERT_PORTS, *staged.values()]
        run = run_suite(["--policy", str(policy), "--tls-ports", ",".join(map(str, ports)), "tests_tls"],
                        via_lab_audit="weak")
    return run, staged


WEAK_EXPECTED = {
    # requirement: (staged port name or fixed variant, text the message must name)
    "TLS-STARTTLS-OFFERED": ("no_starttls", "STARTTLS not advertised"),
    "TLS-NO-SSL": ("ssl3", "accepts SSLv3"),
    "TLS-NO-LEGACY-TLS": ("25-TLSv1.0", "accepts TLSv1.0"),
    "TLS-MODERN": ("ssl3", "refuses TLSv1.3"),
    "TLS-WEAK-CIPHERS": ("25", "TLS_RSA_WITH_"),
    "TLS-CERT-TRUST": ("10465", "self-signed"),
    "TLS-CERT-HOSTNAME": ("10466", "DNS:wrong.example.org"),
    "TLS-CERT-EXPIRY": ("10467", "expires on"),
    "TLS-CERT-KEY": ("10468", "RSA 1024-bit key"),
    "TLS-VULNERABILITIES": ("no_secure_reneg", "no secure renegotiation"),
}


@pytest.mark.lab
@pytest.mark.parametrize("requirement", TLS_IDS)
def test_weak_server_fails_every_tls_requirement(weak_tls, requirement):
    """On mail.weak.test each TLS-* requirement fails where its weakness is staged, naming the evidence."""
    run, staged = weak_tls
    _clean(run)
    where, text = WEAK_EXPECTED[requirement]
    if where in ("ssl3", "no_secure_reneg") and where not in staged:
        pytest.skip(f"{where} listener unavailable (tlslite-ng / gnutls-bin not installed)")
    variant = str(staged[where]) if where in staged else where
    record = _records(run, requirement).get(variant)
    assert record is not None, sorted(_records(run, requirement))
    assert record["outcome"] == "failed", record
    assert text in record["message"], record["message"]


@pytest.mark.lab
def test_weak_legacy_versions_are_separate_verdicts(weak_tls):
    """TLS 1.0 and TLS 1.1 fail as two verdicts on every Postfix port of the weak server."""
    records = _records(weak_tls[0], "TLS-NO-LEGACY-TLS")
    for port in (25, 587, 465):
        for version in ("TLSv1.0", "TLSv1.1"):
            assert records[f"{port}-{version}"]["outcome"] == "failed", records[f"{port}-{version}"]


@pytest.mark.lab
def test_each_certificate_fault_trips_only_its_own_requirement(weak_tls):
    """The wrong-name port is still trusted, the 1024-bit port still covers the name: faults stay apart."""
    run = weak_tls[0]
    assert _records(run, "TLS-CERT-TRUST")["10466"]["outcome"] == "passed"
    assert _records(run, "TLS-CERT-HOSTNAME")["10468"]["outcome"] == "passed"
    assert _records(run, "TLS-CERT-EXPIRY")["10465"]["outcome"] == "passed"


# --- bad input: never a pass ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bad_input_run(tmp_path_factory) -> tuple[AuditRun, dict[str, int]]:
    """The TLS audit of a server whose ports misbehave: STARTTLS refused, plaintext, silence."""
    folder = tmp_path_factory.mktemp("bad-tls")
    with contextlib.ExitStack() as stack:
        ports = {
            "refused": stack.enter_context(listening(smtp_starttls(answer="454 4.7.0 TLS not available"), BAD_IP)),
            "plain": stack.enter_context(listening(plain_smtp, BAD_IP)),
            "silent": stack.enter_context(listening(silent, BAD_IP)),
        }
        policy = _policy(folder, (ports["refused"],), timeout_s=2)
        run = run_suite(["--server", BAD_IP, "--domain", "badinput.test", "--policy", str(policy),
                         "--tls-ports", ",".join(str(p) for p in ports.values()), "tests_tls"], timeout=300)
    return run, ports


@pytest.mark.parametrize(("name", "reason"), [
    ("refused", "STARTTLS answered '454 4.7.0 TLS not available'"),
    ("plain", "speaks no TLS on connect: it answered '220 plain.selftest ESMTP no TLS here'"),
    ("silent", "no answer to the TLS ClientHello on connect within 2 s"),
])
def test_bad_input_is_an_error_or_failure_in_one_line(bad_input_run, name, reason):
    """A port that speaks no TLS, a refused STARTTLS and a handshake timeout each give every TLS-*
    verdict of that port as error (STARTTLS-OFFERED: failure) with one line naming the cause."""
    run, ports = bad_input_run
    _clean(run)
    records = [r for r in run.records if r["requirement"].startswith("TLS-")
               and r["variant"].split("-")[0] == str(ports[name])]
    assert len(records) >= 10, run.stdout[-2000:]
    for record in records:
        assert record["outcome"] in ("error", "failed"), record
        assert reason in record["message"] and "\n" not in record["message"], record
    starttls = [r for r in records if r["requirement"] == "TLS-STARTTLS-OFFERED"]
    if name == "refused":
        assert [r["outcome"] for r in starttls] == ["failed"]
    assert not any(r["outcome"] == "passed" for r in run.records)


# --- the lean scan against sslyze's one-suite-per-connection scan -----------------------------------

HARDENED_IP = "127.0.0.10"
SERVICE_PORTS = (("25", "smtp", "smtp"), ("587", "submission", "smtp"), ("465", "submissions", None),
                 ("143", "imap", "imap"), ("993", "imaps", None), ("110", "pop3", "pop3"), ("995", "pop3s", None),
                 ("443", "https", None))
MAX_AVERAGE_CONNECTIONS = 60


def _lab_settings() -> ScanSettings:
    policy = load_policy(REPO / "lab" / "dns" / "lab-policy.yaml")
    return ScanSettings.from_policy(policy, REPO / "lab" / "run" / "ca.pem")


@contextlib.contextmanager
def _counting_connections() -> Iterator[Counter]:
    """Every TCP connection this process opens, by (ip, port), while the context is open."""
    counts: Counter = Counter()
    lock, real = threading.Lock(), socket.socket.connect

    def connect(sock, address):
        with lock:
            counts[tuple(address[:2])] += 1
        return real(sock, address)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", connect)
        yield counts


def _one_by_one(endpoints: list[TlsEndpoint], settings: ScanSettings) -> dict[TlsEndpoint, dict[str, tuple]]:
    """sslyze's own scan of every suite on its own connection: (accepted names, rejected count) per version."""
    requests = {}
    for endpoint in endpoints:
        location, network = sslyze_target(endpoint, settings)
        requests[endpoint] = ServerScanRequest(server_location=location, network_configuration=network,
                                               scan_commands=set(VERSION_COMMANDS.values()))
    by_uuid = {r.uuid: e for e, r in requests.items()}
    scanner = Scanner(per_server_concurrent_connections_limit=5, concurrent_server_scans_limit=4)
    scanner.queue_scans(list(requests.values()))
    found = {}
    for result in scanner.get_results():
        versions = {}
        for version, command in VERSION_COMMANDS.items():
            attempt = getattr(result.scan_result, command.value)
            versions[version] = (frozenset(a.cipher_suite.name for a in attempt.result.accepted_cipher_suites),
                                 len(attempt.result.rejected_cipher_suites))
        found[by_uuid[result.uuid]] = versions
    return found


def _found(scan: TlsScan) -> dict[str, tuple]:
    return {v.version: (frozenset(s.name for s in v.accepted), v.rejected_count) for v in scan.versions}


@pytest.fixture(scope="module")
def lean_and_reference() -> tuple[dict, dict, Counter, float, dict[str, int]]:
    """Both lab servers' ports, the weak server's certificate ports and the staged listeners: the
    lean scan (connections counted, timed), then sslyze's one-by-one scan of the same ports."""
    settings = _lab_settings()
    services = [(int(p), service, starttls) for p, service, starttls in SERVICE_PORTS]
    with _staged_weak_listeners() as staged:
        extra = [(p, "tls", None) for p in (*CERT_PORTS, *(v for k, v in staged.items() if k != "no_starttls"))]
        endpoints = [*endpoints_for([("mail.hardened.test", HARDENED_IP)], services),
                     *endpoints_for([("mail.weak.test", WEAK_IP)], [*services, *extra])]
        with _counting_connections() as counts:
            started = time.monotonic()
            lean = scan_endpoints(endpoints, settings)
            seconds = time.monotonic() - started
        tls_ports = [e for e in endpoints if not lean[e].scan_error and lean[e].versions]
        reference = _one_by_one(tls_ports, settings)
    return lean, reference, counts, seconds, staged


@pytest.mark.lab
def test_lean_scan_finds_what_sslyze_finds_one_by_one(lean_and_reference):
    """On every lab port (hardened and weak, certificate-fault ports included) and on the staged SSL
    3.0 and insecure-renegotiation listeners, the lean scan accepts and rejects per version exactly
    the suites sslyze's one-suite-per-connection scan does."""
    lean, reference, _, _, staged = lean_and_reference
    assert len(reference) == 8 + 8 + len(CERT_PORTS) + len(staged) - 1, sorted(e.label for e in reference)
    differ = {e.label: (_found(lean[e]), found) for e, found in reference.items() if _found(lean[e]) != found}
    assert not differ, differ


@pytest.mark.lab
def test_lean_scan_stays_within_60_connections_per_port(lean_and_reference):
    """Each lab server's 8 service ports cost at most 60 connections each on average (pre-flight,
    version checks, elimination, checks against a shared enumeration, certificate and
    vulnerability commands: every connection counted), against about 550 for sslyze's scan."""
    lean, _, counts, seconds, _ = lean_and_reference
    for ip in (HARDENED_IP, WEAK_IP):
        per_port = [counts[(ip, int(p))] for p, _, _ in SERVICE_PORTS]
        average = sum(per_port) / len(per_port)
        assert 0 < average <= MAX_AVERAGE_CONNECTIONS, (ip, per_port, f"{seconds:.1f} s")
    shared = [s for s in lean.values() if "presents the same TLS stack" in s.suite_note]
    assert {s.endpoint.port for s in shared if s.endpoint.ip == WEAK_IP} >= {587, 465, 993, 110, 995}
