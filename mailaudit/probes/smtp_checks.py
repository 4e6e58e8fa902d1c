"""The SMTP hardening dialogues (every SMTP-* requirement except the relay), one short session each.

Each function opens its own session (greeting, EHLO, STARTTLS where asked) through the relay
module's ``open_session``, runs one dialogue, says QUIT and returns a frozen result holding the
replies and the transcript. A server that cannot be reached or never greets raises a ProbeError.
DATA is never sent; AUTH lines are redacted in every transcript (``SmtpSession.auth_plain``).
Every session takes its deadline and connection slot from the endpoint's ``SessionSettings``.
Where the server advertises PIPELINING (RFC 2920), the envelopes of a session (MAIL, RCPT, RSET
each) are written as one group and their replies read in order; VRFY, EXPN, AUTH and the
intrusive probes (which count the server's reaction to each attempt) go one command at a time.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import dns.exception
import dns.resolver
import dns.reversename

from mailaudit.errors import DnsError, PortClosed, ProbeError, ProtocolError
from mailaudit.probes.relay import Channel, SessionSettings, envelope_replies, open_session
from mailaudit.probes.smtp import PeerClosed, Reply, SmtpSession, offers

PROBE_PREFIX = "mailaudit"  # local parts start with it, so a postmaster recognises the audit in logs
NULL_SENDER = "<>"


def random_local_part(kind: str) -> str:
    """An unguessable local part (64 random bits), e.g. ``mailaudit-catchall-3f9a...``."""
    return f"{PROBE_PREFIX}-{kind}-{secrets.token_hex(8)}"


def auth_mechanisms(ehlo: Reply | None) -> frozenset[str]:
    """The SASL mechanisms an EHLO reply advertises (``AUTH PLAIN LOGIN`` or ``AUTH=PLAIN``)."""
    if ehlo is None or not ehlo.positive:
        return frozenset()
    mechanisms: set[str] = set()
    for line in ehlo.lines[1:]:
        words = re.split(r"[\s=]+", line.strip().upper())
        if words and words[0] == "AUTH":
            mechanisms.update(w for w in words[1:] if w)
    return frozenset(mechanisms)


@dataclass(frozen=True)
class Endpoint:
    """Where and how to talk to one server: its address, its name (SNI) and the timeouts."""

    ip: str
    host: str
    settings: SessionSettings

    def open(self, port: int, mode: str) -> SmtpSession:
        """Connect, greet, EHLO and (mode ``starttls``) upgrade; a refused upgrade is a ProtocolError."""
        session, unavailable = open_session(self.ip, self.host, Channel(port, mode), self.settings)
        if unavailable:
            raise ProtocolError(f"{session.where}: {unavailable}", evidence=str(session.transcript),
                                evidence_name="SMTP transcript")
        return session


# -- greeting and EHLO per port --------------------------------------------------------------------

@dataclass(frozen=True)
class PortSnapshot:
    """Greeting and EHLO of one port, before and after STARTTLS (or inside implicit TLS)."""

    port: int
    implicit_tls: bool
    greeting: Reply | None = None
    ehlo: Reply | None = None  # plaintext on STARTTLS ports; inside TLS on implicit-TLS ports
    starttls: Reply | None = None
    ehlo_tls: Reply | None = None
    tls_version: str | None = None
    transcript: str = ""
    unavailable: str | None = None

    @property
    def tls_ok(self) -> bool:
        """TLS is in place: implicit, or STARTTLS answered 220 and EHLO was repeated."""
        return self.implicit_tls or (self.starttls is not None and self.starttls.code == 220)

    @property
    def auth_before_tls(self) -> frozenset[str]:
        """Mechanisms offered before STARTTLS (always empty on implicit-TLS ports)."""
        return frozenset() if self.implicit_tls else auth_mechanisms(self.ehlo)

    @property
    def auth_with_tls(self) -> frozenset[str]:
        """Mechanisms offered once TLS is in place."""
        return auth_mechanisms(self.ehlo if self.implicit_tls else self.ehlo_tls)

    def banner_replies(self) -> tuple[tuple[str, Reply], ...]:
        """The server's self-descriptions: the greeting and every EHLO reply, labelled."""
        labelled = (("greeting", self.greeting),
                    ("EHLO reply" if self.implicit_tls else "EHLO reply before STARTTLS", self.ehlo),
                    ("EHLO reply after STARTTLS", self.ehlo_tls))
        return tuple((label, reply) for label, reply in labelled if reply is not None)


def probe_port(endpoint: Endpoint, port: int, implicit_tls: bool, closed_is_error: bool) -> PortSnapshot:
    """Greeting, EHLO, STARTTLS and EHLO again on one port. A closed port is ``unavailable``
    unless ``closed_is_error``; no greeting, a non-220 greeting or a failed handshake raise."""
    session = endpoint.settings.session(endpoint.ip, port, endpoint.host, implicit_tls=implicit_tls)
    try:
        greeting = session.connect()
    except PortClosed:
        if closed_is_error:
            raise
        return PortSnapshot(port, implicit_tls, unavailable=f"port {port} closed (connection refused)")
    try:
        if greeting.code != 220:
            raise ProtocolError(f"{session.where}: greeting {greeting.text[:100]} instead of 220",
                                evidence=str(session.transcript), evidence_name="SMTP transcript")
        ehlo = session.ehlo()
        starttls = ehlo_tls = None
        if not implicit_tls and ehlo.positive and offers(ehlo, "STARTTLS"):
            starttls = session.starttls()
            if starttls.code == 220:
                ehlo_tls = session.ehlo()
        return PortSnapshot(port, implicit_tls, greeting, ehlo, starttls, ehlo_tls, session.tls_version,
                            str(session.transcript))
    finally:
        session.close()


# -- envelopes (MAIL + RCPT, then RSET; never DATA) --------------------------------------------------

@dataclass(frozen=True)
class Envelope:
    """One MAIL FROM / RCPT TO pair and the answers (``rcpt`` is None when MAIL was refused)."""

    label: str
    mail_from: str
    rcpt_to: str
    mail: Reply
    rcpt: Reply | None

    @property
    def deciding(self) -> Reply:
        """The reply that decided the transaction: RCPT's, or MAIL's when MAIL was not accepted."""
        return self.rcpt if self.rcpt is not None else self.mail

    @property
    def accepted(self) -> bool:
        """MAIL and RCPT both accepted: the server would take the message."""
        return self.mail.positive and self.rcpt is not None and self.rcpt.positive

    @property
    def refused(self) -> bool:
        """Refused for good (5xx at MAIL or RCPT)."""
        return self.deciding.permanent

    def describe(self) -> str:
        """``MAIL FROM:<a> RCPT TO:<b> answered 550 ...`` for messages."""
        step = "RCPT" if self.rcpt is not None else "MAIL"
        return f"MAIL FROM:{self.mail_from} RCPT TO:{self.rcpt_to} ({step} answered {self.deciding.text})"


def try_envelope(session: SmtpSession, label: str, mail_from: str, rcpt_to: str) -> Envelope:
    """MAIL, RCPT if MAIL was accepted, then RSET (unless the server said 421)."""
    mail = session.command(f"MAIL FROM:{mail_from}")
    rcpt = session.command(f"RCPT TO:{rcpt_to}") if mail.positive else None
    last = rcpt if rcpt is not None else mail
    if session.connected and last.code != 421:
        session.command("RSET")
    return Envelope(label, mail_from, rcpt_to, mail, rcpt)


def try_envelopes(session: SmtpSession, envelopes: tuple[tuple[str, str, str], ...]) -> tuple[Envelope, ...]:
    """Each (label, MAIL FROM, RCPT TO) in turn: one pipelined group where the server offers
    PIPELINING, else one command at a time (``try_envelope``). Envelopes left unanswered after
    a 421 are a PeerClosed error, as when the next command meets the closed connection."""
    if not session.pipelining:
        return tuple(try_envelope(session, *envelope) for envelope in envelopes)
    lines = [line for _, mail_from, rcpt_to in envelopes
             for line in (f"MAIL FROM:{mail_from}", f"RCPT TO:{rcpt_to}", "RSET")]
    tried: list[Envelope] = []
    with contextlib.closing(session.pipeline(lines)) as replies:
        for label, mail_from, rcpt_to in envelopes:
            got = list(itertools.islice(replies, 3))
            if not got:
                raise session.error(PeerClosed, f"server closed the session (421) before answering {label}")
            mail, rcpt = envelope_replies(session, got)
            tried.append(Envelope(label, mail_from, rcpt_to, mail, rcpt))
    return tuple(tried)


@dataclass(frozen=True)
class EnvelopeCheck:
    """Envelopes tried in one session on one channel, with the transcript."""

    channel: str
    envelopes: tuple[Envelope, ...] = ()
    transcript: str = ""


def probe_envelopes(endpoint: Endpoint, channel: Channel,
                    envelopes: tuple[tuple[str, str, str], ...]) -> EnvelopeCheck:
    """Try each (label, MAIL FROM, RCPT TO) in one session on ``channel``, unauthenticated."""
    session = endpoint.open(channel.port, channel.mode)
    try:
        return EnvelopeCheck(channel.id, try_envelopes(session, envelopes), str(session.transcript))
    finally:
        session.close()


# -- VRFY and EXPN -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Query:
    """One VRFY or EXPN of an address that exists (``exists``) or surely does not."""

    command: str
    argument: str
    exists: bool
    reply: Reply


@dataclass(frozen=True)
class VrfyResult:
    """VRFY and EXPN of known users and of a random nonexistent one, in one session."""

    channel: str
    queries: tuple[Query, ...]
    transcript: str


def probe_vrfy_expn(endpoint: Endpoint, port: int, known: tuple[str, ...], unknown: str) -> VrfyResult:
    """VRFY then EXPN of every known address and of ``unknown`` on ``port`` in plaintext."""
    session = endpoint.open(port, "plain")
    queries: list[Query] = []
    try:
        for command in ("VRFY", "EXPN"):
            for address, exists in (*((a, True) for a in known), (unknown, False)):
                queries.append(Query(command, address, exists, session.command(f"{command} {address}")))
        return VrfyResult(Channel(port, "plain").id, tuple(queries), str(session.transcript))
    finally:
        session.close()


# -- AUTH ---------------------------------------------------------------------------------------------

# Answers that mean "AUTH was taken up": a challenge, success, or a verdict on the credential.
AUTH_PROCESSED = (334, 235, 535)


@dataclass(frozen=True)
class AuthAttempt:
    """AUTH PLAIN with a bogus credential sent before STARTTLS, and the answer."""

    port: int
    reply: Reply
    transcript: str

    @property
    def processed(self) -> bool:
        """The server took the credential up (2xx, 3xx such as 334, or 535) instead of refusing AUTH."""
        return self.reply.code in AUTH_PROCESSED or self.reply.positive or self.reply.intermediate


def probe_auth_before_tls(endpoint: Endpoint, port: int, domain: str) -> AuthAttempt:
    """Send AUTH PLAIN with a random, never-valid credential in plaintext and note the answer."""
    session = endpoint.open(port, "plain")
    try:
        reply = session.auth_plain(f"{random_local_part('auth')}@{domain}", secrets.token_urlsafe(12))
        if reply.code == 334:
            session.command("*", shown_as="* (cancel the AUTH exchange, RFC 4954 §4)")
        return AuthAttempt(port, reply, str(session.transcript))
    finally:
        session.close()


@dataclass(frozen=True)
class AuthMatchResult:
    """Logged in as the test user: MAIL FROM its own address, another local user, another domain."""

    channel: str
    user: str
    auth: Reply
    envelopes: tuple[Envelope, ...]
    transcript: str


def probe_auth_match(endpoint: Endpoint, channel: Channel, user: str, password: str,
                     envelopes: tuple[tuple[str, str, str], ...]) -> AuthMatchResult:
    """AUTH PLAIN as ``user`` (TLS required), then each envelope. A refused login (5xx) raises one
    clear ProtocolError naming the user; a 4xx login is returned for the judge."""
    session = endpoint.open(channel.port, channel.mode)
    try:
        auth = session.auth_plain(user, password)
        if auth.permanent:
            raise ProtocolError(
                f"{session.where}: AUTH as {user} refused ({auth.text[:100]}): "
                "check --smtp-user and MAILAUDIT_SMTP_PASSWORD",
                evidence=str(session.transcript), evidence_name="SMTP transcript")
        tried = try_envelopes(session, envelopes) if auth.positive else ()
        return AuthMatchResult(channel.id, user, auth, tried, str(session.transcript))
    finally:
        session.close()


# -- intrusive: harvesting and password guessing --------------------------------------------------------

@dataclass(frozen=True)
class RepeatResult:
    """A repeated attempt (unknown recipients, wrong passwords) until the server cut it off.

    ``replies`` holds every answer in order; ``cut`` says how the server stopped it (a 421 or
    other blocking answer, or the connection closed), or is None when it never did. A harvest
    first sends MAIL FROM:<> (``prelude``) and RCPT TO a recipient that exists (``control``,
    ``control_address``; ``control_cut`` when the connection ended there). ``note`` says whom
    the attempts were aimed at when that needs saying (a random user instead of a real one)."""

    channel: str
    subject: str  # the attacked user (brute force) or domain (harvest)
    limit: int
    replies: tuple[Reply, ...]
    cut: str | None
    transcript: str
    prelude: Reply | None = None  # the MAIL FROM answer of a harvest
    control: Reply | None = None  # the harvest's control recipient's answer
    control_address: str = ""
    control_cut: str | None = None
    note: str = ""


def _repeat(session: SmtpSession, attempts: int, send: Callable[[int], Reply],
            stops: Callable[[Reply], bool]) -> tuple[tuple[Reply, ...], str | None]:
    """Send up to ``attempts`` times until a reply ``stops`` or the server closes the connection.
    A malformed reply is no cut-off: its ProtocolError ends the probe as an error."""
    replies: list[Reply] = []
    for number in range(1, attempts + 1):
        try:
            reply = send(number)
        except PeerClosed as exc:
            return tuple(replies), f"connection ended at attempt {number} ({exc})"
        replies.append(reply)
        if stops(reply):
            return tuple(replies), f"attempt {number} answered {reply.text[:120]}"
    return tuple(replies), None


def probe_harvest(endpoint: Endpoint, port: int, domain: str, control: str, limit: int) -> RepeatResult:
    """MAIL FROM:<>, RCPT TO the ``control`` recipient (an address that exists), then up to
    ``limit`` + 1 random unknown recipients, in one session. Without an accepted control the
    unknown recipients are not tried: a refusal could not be told from refusing everything."""
    session = endpoint.open(port, "plain")
    base = random_local_part("harvest")
    channel = Channel(port, "plain").id
    try:
        mail = session.command(f"MAIL FROM:{NULL_SENDER}")
        if not mail.positive:
            return RepeatResult(channel, domain, limit, (), None, str(session.transcript), mail,
                                control_address=control)
        try:
            answer = session.command(f"RCPT TO:<{control}>")
        except PeerClosed as exc:
            return RepeatResult(channel, domain, limit, (), None, str(session.transcript), mail,
                                control_address=control, control_cut=str(exc))
        replies: tuple[Reply, ...] = ()
        cut = None
        if answer.positive:
            replies, cut = _repeat(session, limit + 1,
                                   lambda n: session.command(f"RCPT TO:<{base}-{n}@{domain}>"),
                                   lambda reply: reply.code == 421)
        return RepeatResult(channel, domain, limit, replies, cut, str(session.transcript), mail,
                            control=answer, control_address=control)
    finally:
        session.close()


# Answers to a wrong password that are not a block: failed (535), or the server's own
# authentication backend failed for now (454, RFC 4954 §6) — the attempt was not decided.
AUTH_NOT_BLOCKED = (535, 454)


def probe_bruteforce(endpoint: Endpoint, channel: Channel, user: str, limit: int, note: str = "") -> RepeatResult:
    """AUTH PLAIN as ``user`` with up to ``limit`` + 1 random wrong passwords in one session.
    Anything but 535/454 stops it (421, 450 rate limits, other refusals, odd answers), and so does
    a disconnect; the judge decides which of those is a block."""
    session = endpoint.open(channel.port, channel.mode)
    try:
        replies, cut = _repeat(session, limit + 1, lambda n: session.auth_plain(user, secrets.token_urlsafe(18)),
                               lambda reply: reply.code not in AUTH_NOT_BLOCKED)
        if replies and replies[-1].code == 334 and session.connected:
            session.command("*", shown_as="* (cancel the AUTH exchange, RFC 4954 §4)")
        return RepeatResult(channel.id, user, limit, replies, cut, str(session.transcript), note=note)
    finally:
        session.close()


# -- reverse DNS ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PtrAnswer:
    """The PTR names of an address (empty when there is none), with the query for evidence."""

    ip: str
    query: str
    names: tuple[str, ...]


def lookup_ptr(resolver: dns.resolver.Resolver, ip: str) -> PtrAnswer:
    """PTR of ``ip``; NXDOMAIN/NODATA are an empty answer, SERVFAIL and timeouts a DnsError."""
    name = dns.reversename.from_address(ip)
    query = name.to_text()
    try:
        answer = resolver.resolve(name, "PTR")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return PtrAnswer(ip, query, ())
    except dns.resolver.NoNameservers:
        raise DnsError(f"{query} PTR: SERVFAIL or refused by every nameserver") from None
    except dns.exception.Timeout:
        raise DnsError(f"{query} PTR: no answer within {resolver.lifetime:g} s") from None
    return PtrAnswer(ip, query, tuple(sorted(r.target.to_text().rstrip(".").lower() for r in answer)))


__all__ = ["AuthAttempt", "AuthMatchResult", "Endpoint", "Envelope", "EnvelopeCheck", "PortSnapshot",
           "ProbeError", "PtrAnswer", "Query", "RepeatResult", "VrfyResult", "auth_mechanisms",
           "lookup_ptr", "probe_auth_before_tls", "probe_auth_match", "probe_bruteforce",
           "probe_envelopes", "probe_harvest", "probe_port", "probe_vrfy_expn", "random_local_part"]
