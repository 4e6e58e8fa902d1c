"""Offline tests of the SMTP family under the fleet: the per-server probers are thread-safe (each
dialogue runs once however many threads ask), the relay channels run side by side within the
connection slots, the server budget counts overlapping dialogues once, and the prefetch jobs are
exactly the dialogues the collected tests need. Scripted servers on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

from fixtures import smtp as fx
from mailaudit.config import Target
from mailaudit.evaluate.relay import evaluate_relay_variant
from mailaudit.policy import load_policy
from mailaudit.probes.relay import Channel
from mailaudit.probes.smtp_budget import ConnectionSlots, ServerBudget
from selftests.unit.test_smtp_client_unit import lines, serving

BASELINE = Path(__file__).resolve().parents[2] / "policies" / "baseline.yaml"
EHLO = b"250-mail.example.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"


def counting_server(connections: list[int], delay_s: float = 0.0):
    """Greets, offers PIPELINING (no STARTTLS), refuses every RCPT, accepts the rest; each reply after
    ``delay_s``; every connection is counted."""
    def script(sock: socket.socket) -> None:
        connections.append(1)
        sock.sendall(b"220 mail.example.test ESMTP\r\n")
        for line in lines(sock):
            verb = line.split(" ", 1)[0].split(":", 1)[0].upper()
            time.sleep(delay_s)
            if verb == "QUIT":
                sock.sendall(b"221 bye\r\n")
                return
            sock.sendall({"EHLO": EHLO, "RCPT": b"554 5.7.1 Relay access denied\r\n"}.get(verb, b"250 2.0.0 Ok\r\n"))
    return script


@contextmanager
def three_ports(delay_s: float = 0.0) -> Iterator[tuple[list[int], list[list[int]]]]:
    """Three scripted servers on 127.0.0.1; yields their ports and each one's connection list."""
    counts: list[list[int]] = [[], [], []]
    with ExitStack() as stack:
        ports = [stack.enter_context(serving(counting_server(c, delay_s))) for c in counts]
        yield ports, counts


def audit_for(ports: list[int], intrusive: bool = False) -> SimpleNamespace:
    """What the SMTP probers read of an AuditConfig: the baseline SMTP policy on these ports."""
    smtp = dataclasses.replace(load_policy(BASELINE).smtp, ports=tuple(ports), submission_ports=tuple(ports[1:]),
                               implicit_tls_ports=(), inbound_port=ports[0], auth_port=ports[1],
                               connect_timeout_s=2, command_timeout_s=2)
    return SimpleNamespace(policy=SimpleNamespace(smtp=smtp), relay_recipient_domain="example.net",
                           dns_server=None, intrusive=intrusive)


TARGET = Target("mail.example.test", "127.0.0.1", "example.test")


def fresh_config() -> SimpleNamespace:
    """A stand-in for pytest.Config: only its stash is used."""
    return SimpleNamespace(stash=pytest.Stash())


def test_overlapping_dialogues_count_once_against_the_server_deadline():
    """Two dialogues that run side by side use the budget's wall time once, and both end at the same
    moment: the deadline bounds the family, not each dialogue."""
    budget = ServerBudget("mail.example.test", 5.0, ConnectionSlots(2, "mail.example.test"))
    with budget.dialogue() as first:
        time.sleep(0.1)
        with budget.dialogue() as second:
            time.sleep(0.2)
        assert abs(first.at - second.at) < 0.02
    assert 0.28 < budget.spent < 0.4
    with budget.dialogue() as later:
        assert 4.55 < later.remaining() < 4.75


def test_relay_channels_run_side_by_side_within_the_slots_and_once_each():
    """Two threads (the fleet and a test) warming every channel at once, then the observation: each
    channel is probed once (3 sessions of 6, 6 and 5 variants on a plain channel, 1 on the STARTTLS
    channel the server does not offer), two at a time but never more (the policy's 2 connections)."""
    with three_ports(delay_s=0.005) as (ports, counts):
        audit = audit_for(ports)
        config = fresh_config()
        relay = fx.relay_prober_of(config, TARGET, audit)
        assert fx.relay_prober_of(config, TARGET, audit) is relay
        threads = [threading.Thread(target=relay.warm, args=(fx.relay_channels(audit),)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        observation = relay.observation()
    assert [len(c) for c in counts] == [4, 4, 4]
    slots = relay.budget.slots
    assert slots.peak == 2 and slots.open == 0
    assert len(observation.refused_variants) == 3 * 17 and not observation.relayed_variants
    result = relay.channel(Channel(ports[0], "plain"))
    assert all(evaluate_relay_variant(v).passed for v in result.results.values())
    assert relay.channel(Channel(ports[0], "starttls")).unavailable


def test_a_dialogue_asked_by_many_threads_at_once_runs_once():
    """The port snapshot asked by four threads at the same moment opens one connection; all four get
    the same result."""
    with three_ports(delay_s=0.05) as (ports, counts):
        checks = fx.smtp_checks_of(fresh_config(), TARGET, audit_for(ports))
        results: list[object] = []
        threads = [threading.Thread(target=lambda: results.append(checks.snapshot(ports[0]))) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    assert len(counts[0]) == 1 and len(results) == 4 and all(r is results[0] for r in results)


def test_the_prefetch_jobs_are_the_dialogues_the_tests_need():
    """With the collected tests needing one relay channel, the catch-all and the harvest, the fleet
    gets exactly those: the relay channel, the catch-all, and (only with --intrusive) the harvest,
    marked intrusive. Nothing is probed by building the jobs."""
    with three_ports() as (ports, counts):
        config = fresh_config()
        needs = {("relay", Channel(ports[0], "plain")), ("catchall", None), ("harvest", None)}
        config.stash[fx.NEEDS_KEY] = {TARGET.host: needs}
        for intrusive, expected in ((False, [False, False]), (True, [False, False, True])):
            jobs = fx.prefetch_jobs(config, TARGET, audit_for(ports, intrusive))
            assert [j.intrusive for j in jobs] == expected and all(j.contacts_server for j in jobs)
        assert fx.needed_relay_channels(config, TARGET, audit_for(ports)) == (Channel(ports[0], "plain"),)
        assert not any(counts)
        config.stash[fx.NEEDS_KEY] = {}
        assert fx.prefetch_jobs(config, TARGET, audit_for(ports, True)) == []


def test_without_known_needs_every_dialogue_is_a_job():
    """Outside a collected run (needs unknown) every dialogue is prefetched: snapshots, relay, VRFY,
    2 submission ports, local spoof, catch-all, 3 auth-before-TLS ports, auth match, then the PTR
    lookup (resolver only) and, with --intrusive, harvest and brute force last."""
    jobs = fx.prefetch_jobs(fresh_config(), TARGET, audit_for([2525, 2587, 2465], intrusive=True))
    assert len(jobs) == 1 + 1 + 1 + 2 + 1 + 1 + 3 + 1 + 1 + 2
    assert [j.contacts_server for j in jobs].count(False) == 1
    assert [j.intrusive for j in jobs][-2:] == [True, True] and sum(j.intrusive for j in jobs) == 2


def test_the_harvest_and_the_brute_force_never_overlap():
    """Started at the same moment (the fleet running one while a test asks for the other), the two
    intrusive dialogues of a server run one after the other, so neither meets a block the other
    provoked."""
    sessions: dict[str, list[float]] = {}
    lock = threading.Lock()

    def script(sock: socket.socket) -> None:
        sock.sendall(b"220 mail.example.test ESMTP\r\n")
        started, kind = time.monotonic(), ""
        for line in lines(sock):
            verb = line.split(" ", 1)[0].split(":", 1)[0].upper()
            kind = kind or {"AUTH": "bruteforce", "RCPT": "harvest"}.get(verb, "")
            if verb == "QUIT":
                if kind:  # the session ends here, before the client can open the next one
                    with lock:
                        sessions[kind] = [started, time.monotonic()]
                sock.sendall(b"221 bye\r\n")
                return
            time.sleep(0.02)
            sock.sendall({"EHLO": b"250-mail.example.test\r\n250 AUTH PLAIN\r\n",
                          "AUTH": b"535 5.7.8 no\r\n", "RCPT": b"550 5.1.1 unknown\r\n"}.get(verb, b"250 ok\r\n"))

    with serving(script) as port:
        audit = audit_for([port, port, port])
        audit.policy.smtp = dataclasses.replace(audit.policy.smtp, harvest_attempts=3, bruteforce_attempts=3)
        checks = fx.smtp_checks_of(fresh_config(), TARGET, audit)
        checks.snapshot(port)
        threads = [threading.Thread(target=call) for call in (checks.harvest, checks.bruteforce)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
    (_, first_end), (second_start, _) = sorted(sessions.values())
    assert set(sessions) == {"harvest", "bruteforce"} and first_end <= second_start
