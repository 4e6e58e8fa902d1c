#!/usr/bin/env python3
"""Benchmark (not a test): the suite's TLS scan of the lab servers — connections, time, memory — against
sslyze's full scan (the way the suite scanned before the lean scan) and against testssl.sh.

In one run, for the lab servers' service ports (and the weak server's certificate-fault ports):
(1) ``lean``: the suite's scan (mailaudit.probes.tls_scan) in a child process, every TCP connection
counted per port, wall time, CPU time and peak RSS; (2) ``sslyze``: sslyze's own Scanner with every
scan command the TLS requirements use, 5 connections per port and 4 ports at once, counted the same
way; (3) the suite's TLS tests of the same servers in one pytest run (the mailaudit command);
(4) ``testssl --starttls <protocol>`` (Debian package testssl.sh, lab/packages/bench.txt) once per
(server, port), one after the other as testssl runs. Prints a table, the ratios, and whether the
suite and testssl saw the same protocol versions on each port.

    .venv/bin/python bench/tls_vs_testssl.py                      # hardened + weak, 8 ports each
    .venv/bin/python bench/tls_vs_testssl.py --servers far --no-testssl   # 50 ms round trips
    .venv/bin/python bench/tls_vs_testssl.py --ports 25,587 --testssl-args="-p"

Needs the lab (lab/up; ``far`` needs the latency lab) and runs only against its loopback addresses.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SERVERS = {"hardened": ("mail.hardened.test", "127.0.0.10"), "weak": ("mail.weak.test", "127.0.0.20"),
           "far": ("mail.far.test", "127.0.2.10")}
SERVICE_PORTS = (25, 587, 465, 143, 993, 110, 995, 443)
CERT_PORTS = (10465, 10466, 10467, 10468)  # the weak server's certificate faults
STARTTLS = {25: "smtp", 587: "smtp", 143: "imap", 110: "pop3"}
TESTSSL_VERSIONS = {"SSLv2": "SSLv2", "SSLv3": "SSLv3", "TLS1": "TLSv1.0", "TLS1_1": "TLSv1.1",
                    "TLS1_2": "TLSv1.2", "TLS1_3": "TLSv1.3"}
SSLYZE_VERSIONS = {"ssl_2_0_cipher_suites": "SSLv2", "ssl_3_0_cipher_suites": "SSLv3",
                   "tls_1_0_cipher_suites": "TLSv1.0", "tls_1_1_cipher_suites": "TLSv1.1",
                   "tls_1_2_cipher_suites": "TLSv1.2", "tls_1_3_cipher_suites": "TLSv1.3"}
SUITE_TIMEOUT_S = 1800
TESTSSL_TIMEOUT_S = 900


# --- the two scans, each in a child process ----------------------------------------------------

def _targets(servers: list[str], ports: list[int], cert_ports: bool) -> list[tuple[str, str, int]]:
    targets = []
    for name in servers:
        host, ip = SERVERS[name]
        targets += [(host, ip, p) for p in ports]
        if name == "weak" and cert_ports:
            targets += [(host, ip, p) for p in CERT_PORTS]
    return targets


def _settings():
    from mailaudit.policy import load_policy
    from mailaudit.probes.tls import ScanSettings

    policy = load_policy(REPO / "lab" / "dns" / "lab-policy.yaml")
    return ScanSettings.from_policy(policy, REPO / "lab" / "run" / "ca.pem")


def _endpoints(targets: list[tuple[str, str, int]]):
    from mailaudit.probes.tls import TlsEndpoint

    return [TlsEndpoint(host, ip, port, STARTTLS.get(port, "tls"), STARTTLS.get(port)) for host, ip, port in targets]


def _lean(targets: list[tuple[str, str, int]]) -> None:
    from mailaudit.probes.tls_scan import scan_endpoints

    endpoints = _endpoints(targets)
    scans = scan_endpoints(endpoints, _settings())
    shared = [e.port for e in endpoints if "presents the same TLS stack" in scans[e].suite_note]
    errors = [f"{e.label}: {scans[e].scan_error or scans[e].errors}" for e in endpoints
              if scans[e].scan_error or scans[e].errors]
    print(json.dumps({"shared": shared, "errors": errors}))


def _sslyze(targets: list[tuple[str, str, int]]) -> None:
    """sslyze's Scanner as the suite used it before: every command, 5 connections per port, 4 ports at once."""
    from sslyze import CertificateInfoExtraArgument, ScanCommandsExtraArguments, Scanner, ServerScanRequest

    from mailaudit.probes.tls import SCAN_COMMANDS
    from mailaudit.probes.tls_scan import sslyze_target

    settings, requests = _settings(), []
    extra = ScanCommandsExtraArguments(certificate_info=CertificateInfoExtraArgument(custom_ca_file=settings.ca_file))
    for endpoint in _endpoints(targets):
        location, network = sslyze_target(endpoint, settings)
        requests.append(ServerScanRequest(server_location=location, network_configuration=network,
                                          scan_commands=set(SCAN_COMMANDS), scan_commands_extra_arguments=extra))
    scanner = Scanner(per_server_concurrent_connections_limit=5, concurrent_server_scans_limit=4)
    scanner.queue_scans(requests)
    raw = list(scanner.get_results())  # kept, as the suite kept every result until all were done
    print(json.dumps({"shared": [], "errors": [str(r.server_location.port) for r in raw if r.scan_result is None]}))


def _phase(which: str, targets: list[tuple[str, str, int]]) -> None:
    """Run one scan here, counting every TCP connection; print one JSON line."""
    counts: Counter = Counter()
    lock, real = threading.Lock(), socket.socket.connect

    def connect(sock, address):
        with lock:
            counts[f"{address[0]}:{address[1]}"] += 1
        return real(sock, address)
    socket.socket.connect = connect  # this child process only
    started, cpu = time.monotonic(), time.process_time()
    (_lean if which == "lean" else _sslyze)(targets)
    print(json.dumps({"seconds": time.monotonic() - started, "cpu": time.process_time() - cpu,
                      "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "counts": counts}))


@dataclass(frozen=True)
class Measured:
    """One scan's numbers."""

    seconds: float
    cpu: float
    rss_mib: float
    counts: dict[str, int]
    shared: list[int]
    errors: list[str]


def measure(which: str, targets: list[tuple[str, str, int]]) -> Measured:
    """One scan in a child process (so its memory and CPU are its own)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--phase", which,
               "--targets", json.dumps(targets)]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=SUITE_TIMEOUT_S, check=True)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    first, numbers = lines[0], lines[-1]
    return Measured(numbers["seconds"], numbers["cpu"], numbers["rss_mib"], numbers["counts"],
                    first["shared"], first["errors"])


# --- the suite and testssl ---------------------------------------------------------------------

@dataclass(frozen=True)
class Timed:
    """One measured command: wall time, exit code, where its output went."""

    seconds: float
    returncode: int
    output: Path


def run_suite(servers: list[str], ports: list[int], out: Path) -> Timed:
    """The suite's TLS tests of the servers in one run (the mailaudit command, as a user runs it)."""
    hosts = [arg for name in servers for arg in ("--server", SERVERS[name][0])]
    command = [str(REPO / ".venv/bin/python"), "-m", "mailaudit", "tests_tls", *hosts,
               "--dns-server", "127.0.0.54", "--ca-file", str(REPO / "lab/run/ca.pem"),
               "--tls-ports", ",".join(map(str, ports)), "-q", "-p", "no:cacheprovider",
               f"--html={out / 'report.html'}", f"--results-json={out / 'results.json'}"]
    log = out / "suite.log"
    started = time.monotonic()
    with log.open("w") as sink:
        proc = subprocess.run(command, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT, timeout=SUITE_TIMEOUT_S)
    return Timed(time.monotonic() - started, proc.returncode, log)


def run_testssl(host: str, ip: str, port: int, extra: list[str], out: Path) -> Timed:
    """One testssl run against one port, with STARTTLS where the service uses it."""
    json_file = out / f"testssl-{host}-{port}.json"
    command = ["testssl", "--quiet", "--color", "0", "--warnings", "off", "--nodns", "none", "--ip", ip,
               "--add-ca", str(REPO / "lab/run/ca.pem"), "--connect-timeout", "10", "--openssl-timeout", "10",
               "--jsonfile", str(json_file), *extra]
    if port in STARTTLS:
        command += ["--starttls", STARTTLS[port]]
    command.append(f"{host}:{port}")
    started = time.monotonic()
    with (out / f"testssl-{host}-{port}.log").open("w") as sink:
        proc = subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT, timeout=TESTSSL_TIMEOUT_S)
    return Timed(time.monotonic() - started, proc.returncode, json_file)


def testssl_versions(json_file: Path) -> set[str] | None:
    """Protocol versions testssl reports as offered."""
    try:
        findings = json.loads(json_file.read_text())
    except (OSError, ValueError):
        return None
    return {TESTSSL_VERSIONS[f["id"]] for f in findings
            if f.get("id") in TESTSSL_VERSIONS and f.get("finding", "").startswith("offered")}


def suite_versions(out: Path, host: str, port: int) -> set[str] | None:
    """Protocol versions in the sslyze JSON the suite attached to its verdicts for one port."""
    try:
        records = json.loads((out / "results.json").read_text())["results"]
    except (OSError, ValueError, KeyError):
        return None
    name = f"sslyze JSON {host}:{port}"
    files = {e["file"] for r in records for e in r.get("evidence", []) if e.get("name") == name}
    for file in files:
        try:
            result = json.loads((out / file).read_text()).get("scan_result") or {}
        except (OSError, ValueError):
            continue
        return {version for command, version in SSLYZE_VERSIONS.items()
                if (result.get(command) or {}).get("status") == "COMPLETED"
                and result[command]["result"]["accepted_cipher_suites"]}
    return None


# --- the report --------------------------------------------------------------------------------

def table(scans: dict[str, Measured], servers: list[str], ports: list[int]) -> list[str]:
    """Connections per port (service ports and, for weak, certificate ports), time, CPU, memory."""
    rows = [f"{'scan':<7} {'server':<19} {'conn/port':>9} {'(cert ports)':>12} {'wall s':>7} {'cpu s':>6} "
            f"{'RSS MiB':>7}  per port"]
    for which, m in scans.items():
        for name in servers:
            host, ip = SERVERS[name]
            main = [m.counts.get(f"{ip}:{p}", 0) for p in ports]
            cert = [m.counts.get(f"{ip}:{p}", 0) for p in CERT_PORTS] if name == "weak" else []
            cert_text = f"{sum(cert) / len(cert):.1f}" if cert and any(cert) else ""
            rows.append(f"{which:<7} {host:<19} {sum(main) / len(main):>9.1f} {cert_text:>12} {m.seconds:>7.1f} "
                        f"{m.cpu:>6.1f} {m.rss_mib:>7.0f}  {' '.join(map(str, main))}")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="hardened,weak", help="lab servers: hardened, weak, far")
    parser.add_argument("--ports", default=",".join(map(str, SERVICE_PORTS)), help="comma list of ports")
    parser.add_argument("--no-cert-ports", action="store_true", help="leave out the weak server's 10465-10468")
    parser.add_argument("--no-testssl", action="store_true", help="skip testssl (it takes minutes per port)")
    parser.add_argument("--testssl-args", default="", help="extra testssl arguments, e.g. '-p' (default: none)")
    parser.add_argument("--phase", choices=("lean", "sslyze"), help=argparse.SUPPRESS)
    parser.add_argument("--targets", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        _phase(args.phase, [tuple(t) for t in json.loads(args.targets)])
        return 0
    servers, ports = args.servers.split(","), [int(p) for p in args.ports.split(",")]
    if not args.no_testssl and shutil.which("testssl") is None:
        print("bench: testssl not found; install lab/packages/bench.txt (apt-get install testssl.sh), "
              "or give --no-testssl")
        return 2
    out = Path(tempfile.mkdtemp(prefix="tls-bench-"))
    targets = _targets(servers, ports, not args.no_cert_ports)
    print(f"bench: {', '.join(SERVERS[s][0] for s in servers)} x ports {ports}; output in {out}")
    scans = {"sslyze": measure("sslyze", targets), "lean": measure("lean", targets)}
    print("\n".join(table(scans, servers, ports)))
    lean, full = scans["lean"], scans["sslyze"]
    print(f"lean    : {sum(full.counts.values()) / max(1, sum(lean.counts.values())):.1f}x fewer connections, "
          f"{full.seconds / lean.seconds:.1f}x faster, shared enumerations on ports {lean.shared or 'none'}"
          + (f"; errors: {lean.errors}" if lean.errors else ""))

    suite = run_suite(servers, ports, out)
    print(f"suite   : {suite.seconds:7.1f} s  (tests_tls of {len(servers)} server(s) in one run, exit "
          f"{suite.returncode}, log {suite.output})")
    if args.no_testssl:
        return 0
    testssl_total, rows = 0.0, []
    for name in servers:
        host, ip = SERVERS[name]
        for port in ports:
            timed = run_testssl(host, ip, port, args.testssl_args.split(), out)
            testssl_total += timed.seconds
            ours, theirs = suite_versions(out, host, port), testssl_versions(timed.output)
            agree = "n/a" if ours is None or theirs is None else ("yes" if ours == theirs else "NO")
            rows.append(f"  {host}:{port:<5} testssl {timed.seconds:6.1f} s  versions agree: {agree}"
                        f"  (suite {sorted(ours or [])}, testssl {sorted(theirs or [])})")
    print(f"testssl : {testssl_total:7.1f} s  ({len(servers) * len(ports)} runs, one after the other)")
    print("\n".join(rows))
    print(f"ratio   : testssl / suite = {testssl_total / suite.seconds:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
