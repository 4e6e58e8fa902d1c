"""A hostile DNS server of the suite's own (UDP, 127.0.4.1, an ephemeral high port) and a way to
run the real suite against it while measuring the run's peak memory.

The server answers from a table of hostile zones, each staging one attack on the DNS checks:
duplicate and invalid DMARC records, ``pct=¹⁰⁰``, an SPF syntax error, an include loop, an
endless include fan-out of 4 per level, malformed replies, FORMERR, and answers slow enough to
run into the per-server DNS deadline. Every question it gets is recorded with its time, so the
self-tests can bound how many queries and how long each case cost.
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset

ZONE = "hostile.test"
FANOUT = f"fanout.{ZONE}"
SLOW = f"slow.{ZONE}"
SLOW_ANSWER_S = 0.3
SLOW_CHAIN = 8  # includes below slow.hostile.test: 9 TXT queries of 0.3 s for the SPF walk alone


def _txt(*records: str) -> dict[str, tuple[str, ...]]:
    return {"TXT": records}


# name -> {rdtype: records}; names absent are NXDOMAIN
RECORDS: dict[str, dict[str, tuple[str, ...]]] = {
    f"_dmarc.two-dmarc.{ZONE}": _txt(f"v=DMARC1; p=reject; rua=mailto:dmarc@two-dmarc.{ZONE}",
                                     f"v=DMARC1; p=reject; rua=mailto:reports@two-dmarc.{ZONE}"),
    f"_dmarc.bad-dmarc.{ZONE}": _txt(f"v=DMARC1; p=reject; rua=mailto:dmarc@bad-dmarc.{ZONE}; adkim=x"),
    f"_dmarc.pct.{ZONE}": _txt(f"v=DMARC1; p=reject; pct=¹⁰⁰; rua=mailto:dmarc@pct.{ZONE}"),
    f"spf-syntax.{ZONE}": _txt("v=spf1 ip4:127.0.4.5 foo:bar -all"),
    f"spf-loop.{ZONE}": _txt(f"v=spf1 ip4:127.0.4.6 include:loop.spf-loop.{ZONE} -all"),
    f"loop.spf-loop.{ZONE}": _txt(f"v=spf1 include:spf-loop.{ZONE} -all"),
    SLOW: {"TXT": (f"v=spf1 include:i1.{SLOW} -all",), "MX": (f"10 mail.{SLOW}.",)},
    **{f"i{n}.{SLOW}": _txt(f"v=spf1 include:i{n + 1}.{SLOW} -all") for n in range(1, SLOW_CHAIN)},
    f"i{SLOW_CHAIN}.{SLOW}": _txt("v=spf1 ip4:127.0.4.9 -all"),
    f"mail.{SLOW}": {"A": ("127.0.4.9",)},
}


@dataclass
class Question:
    """One question the server received."""

    name: str
    rdtype: str
    at: float


@dataclass
class HostileDnsServer:
    """The hostile DNS server: ``with HostileDnsServer() as server:`` serves until the block ends."""

    ip: str = "127.0.4.1"
    port: int = 0
    questions: list[Question] = field(default_factory=list)
    _sock: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> HostileDnsServer:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((self.ip, 0))
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
        if self._sock:
            self._sock.close()

    @property
    def address(self) -> str:
        """``IP:PORT`` for ``--dns-server``."""
        return f"{self.ip}:{self.port}"

    def asked_under(self, suffix: str) -> list[Question]:
        """Every question for ``suffix`` or a name below it."""
        return [q for q in self.questions if q.name == suffix or q.name.endswith("." + suffix)]

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                wire, peer = self._sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            query = dns.message.from_wire(wire)
            question = query.question[0]
            name = question.name.to_text(omit_final_dot=True).lower()
            self.questions.append(Question(name, dns.rdatatype.to_text(question.rdtype), time.monotonic()))
            delay = SLOW_ANSWER_S if name == SLOW or name.endswith("." + SLOW) else 0.0
            threading.Thread(target=self._reply, args=(query, wire, name, peer, delay), daemon=True).start()

    def _reply(self, query: dns.message.Message, wire: bytes, name: str, peer: tuple[str, int], delay: float) -> None:
        time.sleep(delay)
        if self._sock is not None and not self._stop.is_set():
            with suppress(OSError):
                self._sock.sendto(answer(query, wire, name), peer)


def answer(query: dns.message.Message, wire: bytes, name: str) -> bytes:
    """The hostile reply to one query, as bytes on the wire."""
    if name == f"garbage.{ZONE}" or name.endswith(f".garbage.{ZONE}"):
        return wire[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\xc0\xff\xff"  # ID, then no message
    response = dns.message.make_response(query)
    if name == f"formerr.{ZONE}" or name.endswith(f".formerr.{ZONE}"):
        response.set_rcode(dns.rcode.FORMERR)
        return response.to_wire()
    rdtype = dns.rdatatype.to_text(query.question[0].rdtype)
    records = _records(name, rdtype)
    if records is None:
        response.set_rcode(dns.rcode.NXDOMAIN)
    elif records:
        response.answer.append(_rrset(query.question[0].name, rdtype, records))
    return response.to_wire()


def _records(name: str, rdtype: str) -> tuple[str, ...] | None:
    """The records of (name, type): () for NODATA, None for NXDOMAIN."""
    if name == FANOUT or name.endswith("." + FANOUT):
        if rdtype != "TXT":
            return ()
        return (" ".join(["v=spf1", *(f"include:{c}.{name}" for c in "abcd"), "-all"]),)
    entry = RECORDS.get(name)
    if entry is None:
        return None
    return entry.get(rdtype, ())


def _rrset(qname: dns.name.Name, rdtype: str, records: tuple[str, ...]) -> dns.rrset.RRset:
    if rdtype != "TXT":
        return dns.rrset.from_text(qname, 60, "IN", rdtype, *records)
    rrset = dns.rrset.RRset(qname, dns.rdataclass.IN, dns.rdatatype.TXT)
    for record in records:
        data = record.encode("utf-8")
        chunks = [data[i:i + 255] for i in range(0, len(data), 255)] or [b""]
        rrset.add(dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, chunks), 60)
    return rrset
