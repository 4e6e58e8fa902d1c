"""Probing a fleet: every server's probes run ahead of its tests, all servers at once.

pytest runs tests one after another, and each family probes a server the first time one of its
tests needs it: a fleet of N servers would take N times one. Instead, when the test loop starts,
each probe family hands over (hook ``pytest_mailaudit_prefetch``) the jobs that warm its per-server caches,
and the fleet runs them in threads:

- the jobs that connect to a server run one after another within each family, the families of a
  server side by side (their connection shares add up to ``run.max_connections_per_server``), and
  servers that share an IP share those sequences (one politeness budget per IP); intrusive jobs
  come last, alone;
- jobs that only ask the resolver (DNS) run beside them, in their own small pool;
- at most ``run.max_servers_at_once`` IPs are probed at the same time.

The tests then read what the jobs cached (a family's prober locks each dialogue, so a test that
arrives while a job is still running waits for it instead of probing twice). A job never decides
anything: whatever it raised, the test that needs the result calls the same prober and meets the
same outcome in its own phase, where the plugin records it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import pytest

from mailaudit.config import AuditConfig, Target

DNS_WORKERS = 4
PROBERS_KEY = pytest.StashKey[dict[tuple[str, str], object]]()
_PROBERS_LOCK = threading.Lock()
T = TypeVar("T")


def prober(config: pytest.Config, family: str, target: Target, make: Callable[[], T]) -> T:
    """The one prober of a family for a server in this run (made on first use, shared by the
    fleet's jobs and the tests)."""
    with _PROBERS_LOCK:
        probers = config.stash.setdefault(PROBERS_KEY, {})
        key = (family, target.host)
        if key not in probers:
            probers[key] = make()
        return probers[key]  # type: ignore[return-value]


def release(config: pytest.Config, host: str) -> None:
    """Forget a server's probers once its last verdict is in (keeps memory flat over a fleet)."""
    with _PROBERS_LOCK:
        probers = config.stash.get(PROBERS_KEY, {})
        for key in [k for k in probers if k[1] == host]:
            del probers[key]


@dataclass(frozen=True)
class Prefetch:
    """One job that probes a server ahead of its tests (warms a family's cache)."""

    family: str
    run: Callable[[], object]
    contacts_server: bool = True  # False: it only asks the resolver
    intrusive: bool = False  # runs after every other job of the server


class PrefetchSpec:
    """The hook each probe family implements (in ``fixtures/<family>.py``)."""

    @pytest.hookspec
    def pytest_mailaudit_prefetch(self, config: pytest.Config, target: Target) -> list[Prefetch] | None:
        """The jobs that probe ``target`` ahead of its tests, in the order they should run."""


# The order the tests run in (pytest.ini testpaths): a server's jobs follow it, so the first tests
# find their results first. The fixture each family's tests reach its prober through:
FAMILY_ORDER = ("smtp", "dns", "tls", "api")
FAMILY_FIXTURES = {"smtp": ("smtp_checks", "relay_prober"), "dns": ("dns_checks",), "tls": ("tls_prober",),
                   "api": ("api_snapshot",)}


def families_needed(items: Iterable[pytest.Item]) -> set[str]:
    """The families whose probers the collected tests use (``-k``, ``-m`` and paths count)."""
    names = {name for item in items for name in getattr(item, "fixturenames", ())}
    return {family for family, fixtures in FAMILY_FIXTURES.items() if names & set(fixtures)}


class Fleet:
    """Runs every server's prefetch jobs in the background while the tests run."""

    def __init__(self, config: pytest.Config, audit: AuditConfig) -> None:
        self.config, self.audit = config, audit
        self._stop = threading.Event()
        self._servers: ThreadPoolExecutor | None = None
        self._resolver: ThreadPoolExecutor | None = None
        self.futures: list[Future[None]] = []

    def start(self, items: Iterable[pytest.Item]) -> None:
        """Start probing every server (returns at once), for the families the tests need."""
        needed = families_needed(items)
        by_ip: dict[str, list[Prefetch]] = {}
        dns: list[Prefetch] = []
        for target in self.audit.targets:
            jobs = [job for jobs in self.config.hook.pytest_mailaudit_prefetch(config=self.config, target=target)
                    for job in jobs or () if job.family in needed]
            jobs.sort(key=lambda job: FAMILY_ORDER.index(job.family) if job.family in FAMILY_ORDER else 99)
            by_ip.setdefault(target.ip, []).extend(j for j in jobs if j.contacts_server)
            dns.extend(j for j in jobs if not j.contacts_server)
        if not by_ip and not dns:
            return
        workers = max(1, min(self.audit.policy.run.max_servers_at_once, len(by_ip) or 1))
        self._servers = ThreadPoolExecutor(workers, thread_name_prefix="mailaudit-server")
        self._resolver = ThreadPoolExecutor(DNS_WORKERS, thread_name_prefix="mailaudit-dns")
        for jobs in by_ip.values():
            self.futures.append(self._servers.submit(self._run_server, jobs))
        self.futures.extend(self._resolver.submit(self._run_all, [job]) for job in dns)

    def _run_server(self, jobs: list[Prefetch]) -> None:
        """One IP: each family's jobs in order, the families side by side (their connection shares
        add up to run.max_connections_per_server: Policy.tls_connections_per_server), then the
        intrusive jobs, alone."""
        families: dict[str, list[Prefetch]] = {}
        for job in jobs:
            if not job.intrusive:
                families.setdefault(job.family, []).append(job)
        if families:
            with ThreadPoolExecutor(len(families), thread_name_prefix="mailaudit-family") as pool:
                list(pool.map(self._run_all, families.values()))
        self._run_all([job for job in jobs if job.intrusive])

    def _run_all(self, jobs: Iterable[Prefetch]) -> None:
        for job in jobs:
            if self._stop.is_set():
                return
            try:
                job.run()
            except BaseException:
                continue

    def stop(self) -> None:
        """No new job starts; running ones finish in the background (each is bounded by its own
        deadlines); the run does not wait for them."""
        self._stop.set()
        for pool in (self._servers, self._resolver):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
