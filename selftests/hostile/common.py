"""Shared pieces of the hostile self-tests: a threaded TCP listener, short policies, and the
checks every hostile case makes on every output of a run (no pass, no secret, bounded)."""

from __future__ import annotations

import base64
import json
import multiprocessing
import resource
import socket
import socketserver
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from selftests.e2e.lab import REPO, AuditRun, run_suite

BASELINE = REPO / "policies" / "baseline.yaml"


@dataclass
class Listener:
    """A running hostile listener: its address and every byte each connection sent it."""

    ip: str
    port: int
    received: list[bytes] = field(default_factory=list)

    @property
    def received_text(self) -> str:
        """All bytes received, over all connections, as text."""
        return b"".join(self.received).decode("latin-1")


@contextmanager
def tcp_listener(ip: str, handle: Callable[[socket.socket, Listener], None], port: int = 0) -> Iterator[Listener]:
    """Serve ``handle(sock, listener)`` for each connection on ``ip:port`` (0: any free port)."""
    state = Listener(ip, 0)

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.settimeout(120)
            with suppress(OSError):
                handle(self.request, state)

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer((ip, port), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def recv_line(sock: socket.socket, listener: Listener, limit: int = 65536) -> bytes:
    """Read one CRLF-terminated line from the client (b"" when it closed), recording it."""
    data = b""
    while not data.endswith(b"\n") and len(data) < limit:
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    listener.received.append(data)
    return data


def short_policy(tmp_path: Path, name: str = "hostile", **sections: dict[str, object]) -> Path:
    """A policy extending the baseline, with the given leaves overridden (each cited as a self-test)."""
    lines = [f"extends: {BASELINE}", f"name: {name}"]
    for section, leaves in sections.items():
        lines.append(f"{section}:")
        for key, value in leaves.items():
            lines.append(f"  {key}: {{value: {json.dumps(value)}, source: \"self-test: hostile server\"}}")
    path = tmp_path / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def secret_forms(secret: str, user: str | None = None) -> set[str]:
    """Every encoding of a secret the suite might echo: literal, repr/JSON-escaped, URL-encoded,
    base64 alone and inside the AUTH PLAIN and LOGIN arguments."""
    forms = {secret, repr(secret)[1:-1], json.dumps(secret)[1:-1], urllib.parse.quote(secret, safe=""),
             urllib.parse.quote_plus(secret), base64.b64encode(secret.encode()).decode().rstrip("=")}
    if user:
        plain = base64.b64encode(f"\0{user}\0{secret}".encode()).decode()
        forms |= {plain, plain[: max(16, len(plain) // 2)]}
    return {f for f in forms if len(f) >= 6}


def assert_no_secret(run: AuditRun, *secrets: str, user: str | None = None) -> None:
    """No output of the run (terminal, every file written) holds any form of the secrets."""
    text = run.all_text()
    for secret in secrets:
        for form in secret_forms(secret, user):
            assert form not in text, f"a form of a secret leaked: {form[:12]}…"


def assert_no_pass(run: AuditRun, *requirements: str) -> None:
    """None of the requirements passed, and each has at least one record."""
    for requirement in requirements:
        records = run.verdicts(requirement)
        assert records, f"{requirement}: no verdict\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}"
        passed = [r for r in records if r["outcome"] == "passed"]
        assert not passed, f"{requirement} passed against a hostile server: {passed[0]['message']}"


def assert_no_traceback(run: AuditRun) -> None:
    """Bad behaviour of the server ends in plain lines, never a Python traceback."""
    output = run.stdout + run.stderr
    assert "Traceback (most recent call last)" not in output, output[-3000:]


def _run_and_measure(args: list[str], env: dict[str, str] | None, timeout: int) -> tuple[AuditRun, int]:
    """In a fresh process: run the suite, then its peak RSS in KiB (the only child of this process)."""
    run = run_suite(args, env=env, timeout=timeout)
    return run, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def measured_run_suite(args: list[str], timeout: int, env: dict[str, str] | None = None
                       ) -> tuple[AuditRun, float, float]:
    """Run the suite as run_suite does, from a freshly spawned helper process, so that the suite's
    peak memory is its own (a child forked from a large self-test process would report the
    parent's size): (the run, its peak RSS in MiB, its wall time in seconds)."""
    started = time.monotonic()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        run, peak_kib = pool.submit(_run_and_measure, args, env, timeout).result(timeout=timeout + 30)
    return run, peak_kib / 1024, time.monotonic() - started
