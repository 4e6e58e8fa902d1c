"""Connection slots for the TLS scans: every server under its own politeness limit, all under one cap.

A scan is cut into *jobs*, each of which opens at most one connection at a time (a pre-flight, one
handshake, one sslyze scan job: sslyze's own contract for ``ScanJob``). The run's one ``JobRunner``
starts a job only when its server's IP address (names that resolve to one address share it), its
port and the whole run each have a free slot, taking the servers in turn so that a busy server
never holds up the others. One server's scan is a ``Batch`` with its own deadline, counted from its
first job: later jobs of an expired batch are dropped (its unfinished ports become errors).

Limits: ``run.max_connections_per_server`` (per IP), ``run.max_connections_total`` (the run),
``tls.connections_per_port`` (per port), ``tls.concurrent_ports`` (ports of one IP with connections
open at once). Network I/O happens only inside the jobs; no pytest.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

DEADLINE_KEY = "tls.scan_deadline_s"
POLL_S = 0.25
IDLE_S = 5.0  # a worker thread without a job for this long ends (a new one is made when needed)


@dataclass(frozen=True)
class ConnectionLimits:
    """How many connections may be open at once: per server IP, per port, ports per IP, in all."""

    per_server: int
    total: int
    per_port: int
    ports_per_server: int

    def __post_init__(self) -> None:
        for name in ("per_server", "total", "per_port", "ports_per_server"):
            if getattr(self, name) < 1:
                raise ValueError(f"connection limit {name} must be at least 1, not {getattr(self, name)}")


@dataclass
class _Job:
    batch: Batch
    ip: str
    port: int
    work: Callable[[], None]


@dataclass
class _Address:
    """One IP address: its queued jobs and the connections open to it now."""

    queue: deque[_Job] = field(default_factory=deque)
    running: int = 0
    ports: Counter[int] = field(default_factory=Counter)  # connections open per port


class JobRunner:
    """Runs jobs on worker threads within the connection limits; counts what each (ip, port) got.

    Thread-safe: batches of several servers may be submitted and waited for from several threads,
    and a job may submit the next one (a handshake's answer decides the next ClientHello). Worker
    threads (daemons, at most ``limits.total``) are made as needed, wait for the next job, and end
    after ``IDLE_S`` without one."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.jobs: Counter[tuple[str, int]] = Counter()  # jobs started per (ip, port)
        self.peak_per_server: Counter[str] = Counter()  # most connections open at once per IP
        self.peak_total = 0
        self._addresses: dict[str, _Address] = {}
        self._order: list[str] = []
        self._next = 0
        self._running = 0
        self._ready: deque[tuple[_Address, _Job]] = deque()  # started (slots held), waiting for a worker
        self._idle = 0
        mutex = threading.Lock()
        self._lock = threading.Condition(mutex)  # state changes; batches wait on it
        self._job_ready = threading.Condition(mutex)  # idle workers wait on it

    def batch(self, deadline_s: float, grace_s: float) -> Batch:
        """A new batch (one server's scan) whose jobs must end within ``deadline_s`` of its first."""
        return Batch(self, deadline_s, grace_s)

    # --- inside the lock ---------------------------------------------------------------------------

    def _queue(self, job: _Job) -> None:
        if job.ip not in self._addresses:
            self._addresses[job.ip] = _Address()
            self._order.append(job.ip)
        self._addresses[job.ip].queue.append(job)
        self._pump()

    def _pump(self) -> None:
        """Start every queued job that fits, one address at a time in turn."""
        started = True
        while started and self._running < self.limits.total:
            started = False
            for offset in range(len(self._order)):
                ip = self._order[(self._next + offset) % len(self._order)]
                job = self._startable(self._addresses[ip])
                if job is not None:
                    self._next = (self._next + offset + 1) % len(self._order)
                    self._start(self._addresses[ip], job)
                    started = True
                    break

    def _startable(self, address: _Address) -> _Job | None:
        if any(j.batch.expired_() for j in address.queue):
            for job in [j for j in address.queue if j.batch.expired_()]:
                address.queue.remove(job)
                job.batch.dropped_()
        if not address.queue or address.running >= self.limits.per_server:
            return None
        for job in address.queue:
            open_here = address.ports[job.port]
            if open_here >= self.limits.per_port:
                continue
            if not open_here and len(+address.ports) >= self.limits.ports_per_server:
                continue
            address.queue.remove(job)
            return job
        return None

    def _start(self, address: _Address, job: _Job) -> None:
        job.batch.started_()
        self._running += 1
        address.running += 1
        address.ports[job.port] += 1
        self.jobs[(job.ip, job.port)] += 1
        self.peak_per_server[job.ip] = max(self.peak_per_server[job.ip], address.running)
        self.peak_total = max(self.peak_total, self._running)
        self._ready.append((address, job))
        if len(self._ready) > self._idle:  # every idle worker has a job already: one more worker
            self._idle += 1  # counted idle from now, so the next job does not make another
            threading.Thread(target=self._work, name="tls-scan", daemon=True).start()
        else:
            self._job_ready.notify()

    # --- on a worker thread ------------------------------------------------------------------------

    def _work(self) -> None:
        """Take the next started job, run it, wait for another; end after ``IDLE_S`` without one."""
        while True:
            with self._lock:  # this worker is counted in self._idle here
                until = time.monotonic() + IDLE_S
                while not self._ready:
                    left = until - time.monotonic()
                    if left <= 0:
                        self._idle -= 1
                        return
                    self._job_ready.wait(left)
                self._idle -= 1
                address, job = self._ready.popleft()
            self._run(address, job)

    def _run(self, address: _Address, job: _Job) -> None:
        try:
            job.work()
        except BaseException as exc:  # handed to the batch's wait(), which re-raises it unchanged
            with self._lock:
                job.batch.failed_(exc)
        finally:
            with self._lock:
                self._running -= 1
                self._idle += 1  # this worker takes the next job
                address.running -= 1
                address.ports[job.port] -= 1
                job.batch.finished_()
                self._pump()
                self._lock.notify_all()


class Batch:
    """The jobs of one server's scan: its deadline, what is still queued or running, its failure."""

    def __init__(self, runner: JobRunner, deadline_s: float, grace_s: float) -> None:
        self.runner = runner
        self.deadline_s = deadline_s
        self.grace_s = grace_s  # how long wait() lets running jobs finish after the deadline
        self.deadline: float | None = None  # set when the first job starts
        self._outstanding = 0
        self._running = 0
        self._failure: BaseException | None = None
        self._closed = False

    def submit(self, ip: str, port: int, work: Callable[[], None]) -> bool:
        """Queue one job for (ip, port); False if the batch's deadline has passed (dropped)."""
        with self.runner._lock:
            if self._closed or self.expired_():
                return False
            self._outstanding += 1
            self.runner._queue(_Job(self, ip, port, work))
        return True

    def expired(self) -> bool:
        """Has the deadline passed?"""
        with self.runner._lock:
            return self.expired_()

    def deadline_message(self, ip: str) -> str:
        """One line for the ports the deadline left unfinished."""
        return f"the TLS scan of {ip} did not finish within {self.deadline_s:g} s (policy {DEADLINE_KEY})"

    def wait(self) -> None:
        """Block until none of the batch's jobs is queued or running (or, past the deadline, only
        jobs running longer than ``grace_s`` are left); re-raise the first exception a job raised
        (a bug of ours: jobs turn whatever a server does into results)."""
        lock = self.runner._lock
        with lock:
            while self._outstanding and self._failure is None and not self._overdue():
                lock.wait(POLL_S)
                self.runner._pump()
            self._closed = True
            failure = self._failure
        if failure is not None:
            raise failure

    # --- called by the runner, inside its lock -------------------------------------------------------

    def expired_(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def _overdue(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline + self.grace_s

    def started_(self) -> None:
        if self.deadline is None:
            self.deadline = time.monotonic() + self.deadline_s
        self._running += 1

    def finished_(self) -> None:
        self._running -= 1
        self._outstanding -= 1

    def dropped_(self) -> None:
        self._outstanding -= 1

    def failed_(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc
