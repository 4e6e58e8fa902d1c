"""Offline tests of the TLS scan's connection runner: per-server, per-port and run-wide limits,
servers taken in turn, per-batch deadlines, jobs that queue the next job, and our own bugs."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from mailaudit.probes.tls_runner import ConnectionLimits, JobRunner


class Meter:
    """Records how many jobs run at once: in all, per IP, per (IP, port), ports per IP."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now: Counter[object] = Counter()
        self.peak: Counter[object] = Counter()
        self.ports: dict[str, Counter[int]] = {}
        self.peak_ports: Counter[str] = Counter()

    def job(self, ip: str, port: int, seconds: float = 0.01):
        def work() -> None:
            keys = ("total", ip, (ip, port))
            with self.lock:
                for key in keys:
                    self.now[key] += 1
                    self.peak[key] = max(self.peak[key], self.now[key])
                ports = self.ports.setdefault(ip, Counter())
                ports[port] += 1
                self.peak_ports[ip] = max(self.peak_ports[ip], len(+ports))
            time.sleep(seconds)
            with self.lock:
                for key in keys:
                    self.now[key] -= 1
                self.ports[ip][port] -= 1
        return work


def test_limits_hold_per_server_per_port_and_in_all():
    """Three servers with many jobs on several ports: never more than the per-server, per-port,
    ports-per-server and run-wide limits at once, and the runner's own peaks say the same."""
    limits = ConnectionLimits(per_server=3, total=5, per_port=2, ports_per_server=2)
    runner, meter = JobRunner(limits), Meter()
    batch = runner.batch(deadline_s=30, grace_s=5)
    for ip in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
        for port in (25, 465, 587):
            for _ in range(6):
                batch.submit(ip, port, meter.job(ip, port))
    batch.wait()
    assert meter.peak["total"] <= 5 and runner.peak_total <= 5
    for ip in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
        assert meter.peak[ip] <= 3 and runner.peak_per_server[ip] <= 3 and meter.peak_ports[ip] <= 2
        assert all(meter.peak[(ip, port)] <= 2 for port in (25, 465, 587))
        assert sum(runner.jobs[(ip, port)] for port in (25, 465, 587)) == 18


def test_a_busy_server_does_not_hold_up_another():
    """Servers are taken in turn: a server queued after 200 jobs of another starts at once."""
    runner = JobRunner(ConnectionLimits(per_server=2, total=2, per_port=2, ports_per_server=1))
    batch = runner.batch(deadline_s=30, grace_s=5)
    started: list[str] = []
    for _ in range(200):
        batch.submit("127.0.0.1", 25, lambda: (started.append("busy"), time.sleep(0.005)))
    batch.submit("127.0.0.2", 25, lambda: started.append("other"))
    batch.wait()
    assert started.index("other") < 10


def test_deadline_drops_what_has_not_started():
    """After a batch's deadline no queued job starts; wait() returns; later submits are refused."""
    runner = JobRunner(ConnectionLimits(per_server=1, total=4, per_port=1, ports_per_server=1))
    batch = runner.batch(deadline_s=0.3, grace_s=1)
    ran = []
    for _ in range(20):
        batch.submit("127.0.0.1", 443, lambda: (ran.append(1), time.sleep(0.1)))
    started = time.monotonic()
    batch.wait()
    assert time.monotonic() - started < 1.5
    assert 2 <= len(ran) <= 5
    assert batch.expired() and not batch.submit("127.0.0.1", 443, lambda: None)
    assert "tls.scan_deadline_s" in batch.deadline_message("127.0.0.1")


def test_jobs_may_queue_the_next_job():
    """A job that queues its successor (a handshake's answer decides the next one) keeps the batch
    open until the chain ends."""
    runner = JobRunner(ConnectionLimits(per_server=1, total=1, per_port=1, ports_per_server=1))
    batch = runner.batch(deadline_s=30, grace_s=5)
    done = []

    def step(n: int) -> None:
        done.append(n)
        if n < 5:
            batch.submit("127.0.0.1", 25, lambda: step(n + 1))
    batch.submit("127.0.0.1", 25, lambda: step(1))
    batch.wait()
    assert done == [1, 2, 3, 4, 5]


def test_waiting_for_one_batch_does_not_wait_for_another():
    """Servers scanned by different threads share the limits but each waits only for its own jobs."""
    runner = JobRunner(ConnectionLimits(per_server=2, total=4, per_port=2, ports_per_server=1))
    slow, quick = runner.batch(deadline_s=30, grace_s=5), runner.batch(deadline_s=30, grace_s=5)
    release = threading.Event()
    slow.submit("127.0.0.1", 25, lambda: release.wait(5))
    quick.submit("127.0.0.2", 25, lambda: None)
    started = time.monotonic()
    quick.wait()
    assert time.monotonic() - started < 1
    release.set()
    slow.wait()


def test_a_bug_in_a_job_is_raised_by_wait():
    """An exception inside a job is ours (jobs turn server behaviour into results): wait() raises it
    unchanged, traceback and all, instead of hiding it."""
    runner = JobRunner(ConnectionLimits(per_server=1, total=1, per_port=1, ports_per_server=1))
    batch = runner.batch(deadline_s=30, grace_s=5)

    def broken() -> None:
        raise KeyError("our bug")
    batch.submit("127.0.0.1", 25, broken)
    with pytest.raises(KeyError, match="our bug"):
        batch.wait()


@pytest.mark.parametrize("name", ["per_server", "total", "per_port", "ports_per_server"])
def test_a_limit_below_one_is_refused(name):
    """A limit of 0 would stop every scan: it is refused when the limits are made."""
    values = {"per_server": 1, "total": 1, "per_port": 1, "ports_per_server": 1, name: 0}
    with pytest.raises(ValueError, match=name):
        ConnectionLimits(**values)
