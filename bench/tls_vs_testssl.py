#!/usr/bin/env python3
"""Benchmark (not a test): the suite's TLS audit of both lab servers vs testssl on the same ports.

In one run: (1) the suite's TLS tests (tests_tls) against mail.hardened.test and mail.weak.test
together, as `make demo` would, (2) `testssl --starttls <protocol>` (Debian package testssl.sh,
lab/packages/bench.txt) once per (server, port), one after the other as testssl runs. Prints
both wall times, the ratio, and whether both tools saw the same protocol versions on each port.

    .venv/bin/python bench/tls_vs_testssl.py                 # SMTP STARTTLS ports 25 and 587
    .venv/bin/python bench/tls_vs_testssl.py --ports 25,587,465,143,993,110,995
    .venv/bin/python bench/tls_vs_testssl.py --testssl-args="-p"   # testssl protocols only

Needs the lab (lab/up) and runs only against its loopback addresses.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERVERS = {"mail.hardened.test": "127.0.0.10", "mail.weak.test": "127.0.0.20"}
STARTTLS = {25: "smtp", 587: "smtp", 143: "imap", 110: "pop3"}
TESTSSL_VERSIONS = {"SSLv2": "SSLv2", "SSLv3": "SSLv3", "TLS1": "TLSv1.0", "TLS1_1": "TLSv1.1",
                    "TLS1_2": "TLSv1.2", "TLS1_3": "TLSv1.3"}
SSLYZE_VERSIONS = {"ssl_2_0_cipher_suites": "SSLv2", "ssl_3_0_cipher_suites": "SSLv3",
                   "tls_1_0_cipher_suites": "TLSv1.0", "tls_1_1_cipher_suites": "TLSv1.1",
                   "tls_1_2_cipher_suites": "TLSv1.2", "tls_1_3_cipher_suites": "TLSv1.3"}
SUITE_TIMEOUT_S = 1800
TESTSSL_TIMEOUT_S = 900


@dataclass(frozen=True)
class Timed:
    """One measured command: wall time, exit code, where its output went."""

    seconds: float
    returncode: int
    output: Path


def run_suite(ports: list[int], out: Path) -> Timed:
    """Both lab servers in one pytest run: one sslyze Scanner for every (server, port)."""
    command = [str(REPO / ".venv/bin/python"), "-m", "pytest", "tests_tls",
               *[arg for host in SERVERS for arg in ("--server", host)],
               "--dns-server", "127.0.0.53", "--ca-file", str(REPO / "lab/run/ca.pem"),
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
    """Protocol versions in the suite's saved sslyze JSON for one port."""
    try:
        data = json.loads((out / "tls" / f"sslyze-{host}-{port}.json").read_text())
    except (OSError, ValueError):
        return None
    result = data.get("scan_result") or {}
    return {name for command, name in SSLYZE_VERSIONS.items()
            if (result.get(command) or {}).get("status") == "COMPLETED"
            and result[command]["result"]["accepted_cipher_suites"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ports", default="25,587", help="comma list of ports (default: 25,587)")
    parser.add_argument("--testssl-args", default="", help="extra testssl arguments, e.g. '-p' (default: none)")
    args = parser.parse_args()
    if shutil.which("testssl") is None:
        print("bench: testssl not found; install lab/packages/bench.txt (apt-get install testssl.sh)")
        return 2
    ports = [int(p) for p in args.ports.split(",")]
    out = Path(tempfile.mkdtemp(prefix="tls-bench-"))
    print(f"bench: {len(SERVERS)} servers x ports {ports}; output in {out}")

    suite = run_suite(ports, out)
    print(f"suite   : {suite.seconds:7.1f} s  (one pytest run, exit {suite.returncode}, log {suite.output})")

    testssl_total = 0.0
    rows = []
    for host, ip in SERVERS.items():
        for port in ports:
            timed = run_testssl(host, ip, port, args.testssl_args.split(), out)
            testssl_total += timed.seconds
            ours, theirs = suite_versions(out, host, port), testssl_versions(timed.output)
            agree = "n/a" if ours is None or theirs is None else ("yes" if ours == theirs else "NO")
            rows.append(f"  {host}:{port:<5} testssl {timed.seconds:6.1f} s  versions agree: {agree}"
                        f"  (suite {sorted(ours or [])}, testssl {sorted(theirs or [])})")
    print(f"testssl : {testssl_total:7.1f} s  ({len(SERVERS) * len(ports)} runs, one after the other)")
    print("\n".join(rows))
    ratio = testssl_total / suite.seconds if suite.seconds else float("inf")
    print(f"ratio   : testssl / suite = {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
