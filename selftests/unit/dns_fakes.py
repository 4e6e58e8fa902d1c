"""Offline stand-ins for the DNS unit tests: a dict-backed client and a misbehaving DNS server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import dns.message
import dns.rcode

from mailaudit.probes.dns import Answer


@dataclass
class FakeClient:
    """Answers ``query(name, rdtype)`` from a dict; a missing name is NXDOMAIN. Counts queries."""

    zone: dict[tuple[str, str], tuple[str, ...]]
    log: list[str] = field(default_factory=list)
    asked: list[tuple[str, str]] = field(default_factory=list)

    @property
    def queries(self) -> int:
        """How many questions were asked."""
        return len(self.asked)

    def query(self, name: str, rdtype: str, dnssec: bool = False) -> Answer:
        """The records of (name, rdtype), NODATA when the name has other types, else NXDOMAIN."""
        self.asked.append((name.lower().rstrip("."), rdtype))
        key = (name.lower().rstrip("."), rdtype)
        if key in self.zone:
            records = self.zone[key]
            return Answer(name, rdtype, "NOERROR" if records else "NODATA", records)
        if any(n == key[0] for n, _ in self.zone):
            return Answer(name, rdtype, "NODATA")
        return Answer(name, rdtype, "NXDOMAIN")

    def addresses(self, name: str) -> tuple[str, ...]:
        """A and AAAA records together."""
        return self.query(name, "A").records + self.query(name, "AAAA").records

    def evidence(self) -> str:
        """No log kept."""
        return ""


class MisbehavingDnsServer:
    """A UDP DNS server on 127.0.0.1 that answers every query with one rcode, never answers
    (``rcode=None``), or sends what ``reply(query_wire)`` returns (malformed replies)."""

    def __init__(self, rcode: str | None, reply: Callable[[bytes], bytes] | None = None) -> None:
        self.rcode = rcode  # "SERVFAIL", "REFUSED", "FORMERR", ... or None for silence
        self.reply = reply
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> MisbehavingDnsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            self.queries += 1
            if self.reply is not None:
                self.sock.sendto(self.reply(wire), peer)
                continue
            if self.rcode is None:
                continue
            response = dns.message.make_response(dns.message.from_wire(wire))
            response.set_rcode(dns.rcode.from_text(self.rcode))
            self.sock.sendto(response.to_wire(), peer)
