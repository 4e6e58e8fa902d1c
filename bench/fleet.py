#!/usr/bin/env python3
"""Benchmark (not a test): a fleet audit as N grows, and one audit near and far.

Every measurement is one `mailaudit` process, timed from outside with GNU time (wall seconds, CPU
seconds, peak resident memory), as a nightly run would start it:

- **fleet**: N = 1, 8, 32, 100 distinct server addresses 127.0.1.1 ... 127.0.1.N. The lab's hardened
  Postfix, Dovecot and API simulator listen on each of them (lab/lib.sh FLEET_SIZE; each address is
  on `lo`, so each server sees its own client address), the domain is hardened.test, the resolver
  the lab's; the API is read without certificate checks (`--api-insecure`: the lab certificate
  names 127.0.0.10, not the fleet addresses);
- **latency**: the one-server audit of the hardened server directly (loopback, fleet address
  127.0.1.99) and of mail.far.test, the same server behind the latency lab's forwarder (25 ms each
  way, lab/components/80-latency.sh) with the resolver behind it too;
- **testssl** (with --testssl): testssl.sh on the 8 TLS ports of mail.hardened.test, one after the
  other, against the same one-server audit.

    .venv/bin/python bench/fleet.py                      # fleet 1, 8, 32, 100 and latency
    .venv/bin/python bench/fleet.py --sizes 1,8 --no-latency
    .venv/bin/python bench/fleet.py --testssl            # adds testssl.sh (several minutes)

Prints a Markdown table (README "Performance"). Needs the lab (lab/up); loopback addresses only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAILAUDIT = REPO / ".venv" / "bin" / "mailaudit"
CREDENTIALS = REPO / "lab" / "credentials.env"
TLS_PORTS = {25: "smtp", 587: "smtp", 465: None, 143: "imap", 993: None, 110: "pop3", 995: None, 443: None}
TIMEOUT_S = 3600


@dataclass(frozen=True)
class Measured:
    """One timed process."""

    label: str
    servers: int
    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    verdicts: int
    returncode: int

    def row(self) -> str:
        """One Markdown table row."""
        per = self.cpu_s / self.servers if self.servers else 0
        return (f"| {self.label} | {self.servers} | {self.wall_s:.1f} | {self.cpu_s:.1f} | {per:.2f} | "
                f"{self.peak_rss_mib:.0f} | {self.verdicts} | {self.returncode} |")


def lab_env() -> dict[str, str]:
    """The environment with the lab's credentials (lab/credentials.env)."""
    env = dict(os.environ)
    for line in CREDENTIALS.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            env[key.strip()] = value.strip()
    return env


def timed(label: str, command: list[str], servers: int, results: Path | None) -> Measured:
    """Run ``command`` under GNU time; read the verdict count from its results JSON."""
    stats = Path(tempfile.mkstemp(prefix="fleet-time-")[1])
    full = ["/usr/bin/time", "-o", str(stats), "-f", "%e %U %S %M", *command]
    proc = subprocess.run(full, cwd=REPO, env=lab_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    wall, user, system, rss_kib = stats.read_text().split()[-4:]
    stats.unlink()
    verdicts = len(json.loads(results.read_text())["results"]) if results and results.exists() else 0
    return Measured(label, servers, float(wall), float(user) + float(system), int(rss_kib) / 1024, verdicts,
                    proc.returncode)


def audit_command(servers: list[str], out: Path, domain: str = "hardened.test",
                  resolver: str = "127.0.0.54") -> list[str]:
    """The nightly command for these servers, every output under ``out``."""
    command = [str(MAILAUDIT), *[arg for s in servers for arg in ("--server", s)], "--domain", domain,
               "--dns-server", resolver, "--policy", str(REPO / "lab/dns/lab-policy.yaml"),
               "--ca-file", str(REPO / "lab/run/ca.pem"), "--smtp-user", "alice@hardened.test",
               "--dkim-selector", "lab", "--api-url", "https://{server}", "--api-insecure",
               "-q", "-p", "no:cacheprovider",
               f"--html={out / 'report.html'}", f"--results-json={out / 'results.json'}"]
    return command


def fleet(sizes: list[int]) -> list[Measured]:
    """N distinct server addresses in one run, for each N."""
    rows = []
    for n in sizes:
        out = Path(tempfile.mkdtemp(prefix=f"fleet-{n}-"))
        servers = [f"127.0.1.{i}" for i in range(1, n + 1)]
        rows.append(timed(f"fleet N={n}", audit_command(servers, out), n, out / "results.json"))
        print(rows[-1].row(), file=sys.stderr)
    return rows


def latency() -> list[Measured]:
    """The one-server audit on loopback and 50 ms away."""
    rows = []
    # Loopback: a fleet address (a client address of its own, like mail.far.test's forwarder), not
    # mail.hardened.test, whose client address the lab's self-tests keep busy (Postfix rate limits).
    for label, server, resolver in (("one server, loopback", "127.0.1.99", "127.0.0.54"),
                                    ("one server, 50 ms RTT", "mail.far.test", "127.0.2.54")):
        out = Path(tempfile.mkdtemp(prefix="fleet-rtt-"))
        rows.append(timed(label, audit_command([server], out, resolver=resolver), 1, out / "results.json"))
        print(rows[-1].row(), file=sys.stderr)
    return rows


def testssl() -> Measured:
    """testssl.sh on the 8 TLS ports of the hardened server, one port after the other."""
    started = time.monotonic()
    codes = []
    for port, starttls in TLS_PORTS.items():
        command = ["testssl", "--quiet", "--warnings", "off", "--color", "0", "--ip", "127.0.0.10"]
        if starttls:
            command += ["--starttls", starttls]
        command.append(f"mail.hardened.test:{port}")
        codes.append(subprocess.run(command, capture_output=True, timeout=TIMEOUT_S).returncode)
    return Measured("testssl.sh, 8 ports", 1, time.monotonic() - started, 0.0, 0.0, 0, max(codes))


def main() -> int:
    parser = argparse.ArgumentParser(description="fleet, latency and testssl benchmark on the lab")
    parser.add_argument("--sizes", default="1,8,32,100")
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--testssl", action="store_true")
    args = parser.parse_args()
    rows = [] if args.no_latency else latency()
    rows += fleet([int(n) for n in args.sizes.split(",") if n])
    if args.testssl:
        rows.append(testssl())
    print("| run | servers | wall s | CPU s | CPU s / server | peak RSS MiB | verdicts | exit |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(row.row())
    return 0


if __name__ == "__main__":
    sys.exit(main())
