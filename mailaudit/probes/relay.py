"""The open-relay probe: classic MAIL FROM / RCPT TO forms, each answered by RCPT, never DATA.

Every variant asks the server to accept a recipient at a domain that cannot receive mail
(example.net by default) without authentication. The dialogue is MAIL, RCPT, RSET per variant;
a fresh connection is opened before the server's error limit so its error throttling (Postfix's
``smtpd_error_sleep_time``) does not slow the audit. Where the server advertises PIPELINING
(RFC 2920) the variants of a session go in groups, each written at once and its replies read in
order, so a session costs a few round trips instead of three per variant. One channel uses one
connection at a time; the channels of a server may run side by side within its connection slots.
"""

from __future__ import annotations

import contextlib
import itertools
from collections import deque
from dataclasses import dataclass, field

from mailaudit.budget import Deadline
from mailaudit.errors import PortClosed, ProtocolError
from mailaudit.probes.smtp import CLOSING, PIPELINE_MAX_BYTES, Reply, SmtpSession, offers
from mailaudit.probes.smtp_budget import ConnectionSlots

PROBE_LOCAL_PART = "relaytest"


@dataclass(frozen=True)
class RelayVariant:
    """One relay form: a stable id, the envelope sender and recipient, and what it tries."""

    id: str
    mail_from: str
    rcpt_to: str
    tries: str


@dataclass(frozen=True)
class Channel:
    """How we talk to a port: ``plain`` text, ``starttls`` upgrade or implicit ``tls``."""

    port: int
    mode: str

    @property
    def id(self) -> str:
        """e.g. ``25-starttls``."""
        return f"{self.port}-{self.mode}"


@dataclass(frozen=True)
class VariantResult:
    """What the server answered to one variant (``rcpt`` is None when MAIL was refused)."""

    variant: RelayVariant
    mail: Reply | None
    rcpt: Reply | None
    transcript: str
    error: str | None = None


@dataclass(frozen=True)
class ChannelResult:
    """All variants on one channel, or why the channel could not be used."""

    channel: Channel
    results: dict[str, VariantResult]
    unavailable: str | None = None


# (id, sender template, recipient template, what it tries). {ext} external domain, {dom} mail
# domain, {host} server name, {ip} server IP, {u} probe local part.
_FORMS = (
    ("null-sender", "<>", "<{u}@{ext}>", "bounce-style null sender to an external recipient"),
    ("external-sender", "<{u}@{ext_sender}>", "<{u}@{ext}>", "outsider to outsider"),
    ("spoofed-local-sender", "<postmaster@{dom}>", "<{u}@{ext}>", "forged local sender"),
    ("server-name-sender", "<postmaster@{host}>", "<{u}@{ext}>", "sender at the server's own name"),
    ("ip-literal-sender", "<postmaster@[{ip}]>", "<{u}@{ext}>", "sender at the server's IP literal"),
    ("localhost-sender", "<postmaster@localhost>", "<{u}@{ext}>", "sender at localhost"),
    ("unqualified-sender", "<postmaster>", "<{u}@{ext}>", "sender without a domain"),
    ("percent-hack", "<postmaster@{dom}>", "<{u}%{ext}@{dom}>", "percent hack via the domain"),
    ("percent-hack-ip", "<postmaster@{dom}>", "<{u}%{ext}@[{ip}]>", "percent hack via the IP literal"),
    ("quoted-local-part", "<postmaster@{dom}>", '<"{u}@{ext}">', "quoted address as local part"),
    ("quoted-local-at-domain", "<postmaster@{dom}>", '<"{u}@{ext}"@{dom}>', "quoted external address at the domain"),
    ("double-at", "<postmaster@{dom}>", "<{u}@{ext}@{dom}>", "two @ signs"),
    ("source-route", "<postmaster@{dom}>", "<@{dom}:{u}@{ext}>", "RFC 821 source route via the domain"),
    ("source-route-ip", "<postmaster@{dom}>", "<@[{ip}]:{u}@{ext}>", "source route via the IP literal"),
    ("bang-path", "<postmaster@{dom}>", "<{ext}!{u}>", "UUCP bang path"),
    ("bang-path-at-domain", "<postmaster@{dom}>", "<{ext}!{u}@{dom}>", "bang path at the domain"),
    ("bang-path-ip", "<postmaster@{dom}>", "<{ext}!{u}@[{ip}]>", "bang path at the IP literal"),
)

VARIANT_IDS: tuple[str, ...] = tuple(form[0] for form in _FORMS)


def relay_variants(domain: str, server_name: str, server_ip: str, external_domain: str) -> tuple[RelayVariant, ...]:
    """The relay forms for one server, filled in with its domain, name and address."""
    ip = f"IPv6:{server_ip}" if ":" in server_ip else server_ip
    values = {"u": PROBE_LOCAL_PART, "ext": external_domain, "ext_sender": f"sender.{external_domain}",
              "dom": domain, "host": server_name, "ip": ip}
    return tuple(
        RelayVariant(id=vid, mail_from=sender.format(**values), rcpt_to=rcpt.format(**values), tries=tries)
        for vid, sender, rcpt, tries in _FORMS
    )


@dataclass(frozen=True)
class SessionSettings:
    """Timeouts and politeness limits for one server: the dialogue's deadline (the SMTP family's
    per-server budget) and the server's connection slots."""

    connect_timeout: float
    command_timeout: float
    # Error replies (4xx/5xx) one relay session may collect before a new one starts: below the soft
    # error limit of Postfix's defaults (10, then a 1 s sleep before every reply) with room to spare;
    # a lower limit the server shows with a 421 is learnt (_ChannelRun).
    refusals_per_session: int = 6
    deadline: Deadline = field(default_factory=Deadline.never)
    slots: ConnectionSlots | None = None

    def session(self, ip: str, port: int, server_name: str, implicit_tls: bool = False) -> SmtpSession:
        """A new, unconnected session with these settings."""
        return SmtpSession(ip, port, server_name, self.connect_timeout, self.command_timeout,
                           implicit_tls=implicit_tls, deadline=self.deadline, slots=self.slots)


def open_session(
    ip: str, server_name: str, channel: Channel, settings: SessionSettings
) -> tuple[SmtpSession, str | None]:
    """Connect, greet, EHLO and (for ``starttls``) upgrade. Returns the session and, if the
    channel cannot be used as asked (STARTTLS not offered or refused), the reason."""
    session = settings.session(ip, channel.port, server_name, implicit_tls=channel.mode == "tls")
    greeting = session.connect()
    if greeting.code != 220:
        session.close()
        raise ProtocolError(f"{session.where}: greeting {greeting.text[:100]} instead of 220",
                            evidence=str(session.transcript), evidence_name="SMTP transcript")
    ehlo = session.ehlo()
    if channel.mode != "starttls":
        return session, None
    if not ehlo.positive or not offers(ehlo, "STARTTLS"):
        session.close()
        return session, f"STARTTLS not offered on port {channel.port}"
    reply = session.starttls()
    if reply.code != 220:
        session.close()
        return session, f"STARTTLS refused on port {channel.port}: {reply.text[:100]}"
    session.ehlo()
    return session, None


def probe_channel(ip: str, server_name: str, channel: Channel, variants: tuple[RelayVariant, ...],
                  settings: SessionSettings, closed_is_error: bool) -> ChannelResult:
    """Run every variant on one channel, one session at a time, reconnecting before the server's
    error limit; pipelined in groups where the server advertises PIPELINING."""
    run = _ChannelRun(ip, server_name, channel, settings, closed_is_error)
    try:
        return run.all(variants)
    finally:
        run.close()


@dataclass
class _Outcome:
    """What one try of a variant gave: a ``result``, or ``closing`` (421 at MAIL or RCPT; the result
    is kept for the second try), or an ``error``; neither when the server never answered it."""

    result: VariantResult | None = None
    closing: bool = False
    error: ProtocolError | None = None


class _ChannelRun:
    """The relay dialogue of one channel: its current session, the errors the server counted in it,
    and what it learnt about the server's error limit.

    Every reply of 400 or more counts as one error (servers count refused commands: Postfix's
    ``smtpd_hard_error_limit``, SmarterMail's bad-session rules). A new session starts before the
    errors reach ``settings.refusals_per_session``, and a 421 lowers that limit to the errors the
    server took before it. A pipelined group holds as many variants as fit under the limit, given
    the most errors one variant has cost so far (2 when MAIL is refused: the pipelined RCPT is
    refused too)."""

    def __init__(self, ip: str, server_name: str, channel: Channel, settings: SessionSettings,
                 closed_is_error: bool) -> None:
        self.ip, self.server_name, self.channel, self.settings = ip, server_name, channel, settings
        self.closed_is_error = closed_is_error
        self.session: SmtpSession | None = None
        self.prologue: list[str] = []
        self.errors = 0
        self.limit = settings.refusals_per_session
        self.per_variant = 1

    def close(self) -> None:
        """QUIT and close the current session, if any."""
        if self.session is not None:
            self.session.close()

    def all(self, variants: tuple[RelayVariant, ...]) -> ChannelResult:
        """Every variant tried (up to twice: after a broken dialogue or a 421) in order."""
        results: dict[str, VariantResult] = {}
        pending: deque[tuple[RelayVariant, int]] = deque((v, 1) for v in variants)
        while pending:
            unavailable = self._ready()
            if unavailable:
                return ChannelResult(self.channel, {}, unavailable)
            batch = self._take(pending)
            again: list[tuple[RelayVariant, int]] = []
            for (variant, attempt), outcome in zip(batch, self._try(batch), strict=True):
                if outcome.result is not None and not (outcome.closing and attempt == 1):
                    results[variant.id] = outcome.result
                elif outcome.error is not None and attempt == 2:
                    results[variant.id] = VariantResult(variant, None, None, outcome.error.evidence,
                                                        error=str(outcome.error))
                else:
                    answered = outcome.result is not None or outcome.error is not None
                    again.append((variant, attempt + 1 if answered else attempt))
            pending.extendleft(reversed(again))
        return ChannelResult(self.channel, results)

    def _ready(self) -> str | None:
        """A usable session (a new one when there is none, it broke, or the error limit is near);
        the reason when the channel cannot be used."""
        session = self.session
        if session is not None and session.connected and self.errors < self.limit:
            return None
        if session is not None:
            session.close()
        self.session, unavailable = _reopen(self.ip, self.server_name, self.channel, self.settings,
                                            self.closed_is_error)
        self.prologue, self.errors = list(self.session.transcript.lines), 0
        return unavailable

    def _take(self, pending: deque[tuple[RelayVariant, int]]) -> list[tuple[RelayVariant, int]]:
        """The next group: one variant without PIPELINING, else as many as the error limit and the
        RFC 2920 window allow."""
        assert self.session is not None
        wanted = max(1, (self.limit - self.errors) // self.per_variant) if self.session.pipelining else 1
        batch = [pending.popleft()]
        size = _group_size(batch[0][0])
        while pending and len(batch) < wanted and size + _group_size(pending[0][0]) <= PIPELINE_MAX_BYTES:
            size += _group_size(pending[0][0])
            batch.append(pending.popleft())
        return batch

    def _try(self, batch: list[tuple[RelayVariant, int]]) -> list[_Outcome]:
        """One try of each variant of the group; the error count and limit updated."""
        assert self.session is not None
        if not self.session.pipelining:
            return [self._one(batch[0][0])]
        return self._pipelined([variant for variant, _ in batch])

    def _one(self, variant: RelayVariant) -> _Outcome:
        """MAIL, RCPT if MAIL was accepted, RSET: one command at a time."""
        session = self.session
        assert session is not None
        mark = len(session.transcript.lines)
        try:
            result, rset = _try_variant(session, variant, self.prologue, mark)
        except ProtocolError as exc:
            return _Outcome(error=exc)
        self._count([r for r in (result.mail, result.rcpt, rset) if r is not None])
        if rset is not None and rset.code == CLOSING:
            session.close()
        return _Outcome(result, closing=_closing(result))

    def _pipelined(self, variants: list[RelayVariant]) -> list[_Outcome]:
        """MAIL, RCPT and RSET of every variant in one pipelined group, the replies read in order.
        A broken reply leaves none of the group's replies trusted: every variant read so far gets
        the error (a try), those after it are unanswered."""
        session = self.session
        assert session is not None
        lines = [line for v in variants for line in (f"MAIL FROM:{v.mail_from}", f"RCPT TO:{v.rcpt_to}", "RSET")]
        outcomes: list[_Outcome] = []
        try:
            with contextlib.closing(session.pipeline(lines)) as replies:
                note = session.transcript.lines[-1]
                for variant in variants:
                    mark = len(session.transcript.lines)
                    got = list(itertools.islice(replies, 3))
                    if not got:
                        break
                    mail, rcpt = envelope_replies(session, got)
                    self._count(got)
                    result = VariantResult(variant, mail, rcpt, _text(self.prologue, session, mark, note))
                    outcomes.append(_Outcome(result, closing=_closing(result)))
        except ProtocolError as exc:
            shared = ProtocolError(f"another reply of its pipelined group was broken, so none is trusted: {exc}",
                                   evidence=exc.evidence, evidence_name=exc.evidence_name)
            outcomes = [_Outcome(error=shared) for _ in outcomes] + [_Outcome(error=exc)]
        return outcomes + [_Outcome() for _ in range(len(variants) - len(outcomes))]

    def _count(self, replies: list[Reply]) -> None:
        """Count the errors of one variant's replies; a 421 sets the limit to those taken before it."""
        errors = 0
        for reply in replies:
            if reply.code == CLOSING:
                self.limit = max(1, self.errors + errors)
                self.errors = self.limit
                break
            errors += reply.code >= 400
        else:
            self.errors += errors
        self.per_variant = max(self.per_variant, errors)


def envelope_replies(session: SmtpSession, got: list[Reply]) -> tuple[Reply, Reply | None]:
    """MAIL's and RCPT's replies among the pipelined replies of one envelope (MAIL, RCPT, RSET).
    RCPT's reply counts only after an accepted MAIL, as if RCPT had not been sent (the transcript
    says so)."""
    mail = got[0]
    if len(got) < 2:
        return mail, None
    if not mail.positive:
        if got[1].code != CLOSING:
            session.transcript.add("*", "RCPT was pipelined after a refused MAIL: its reply decides nothing")
        return mail, None
    return mail, got[1]


def _group_size(variant: RelayVariant) -> int:
    """Bytes of a variant's MAIL, RCPT and RSET lines."""
    return len(f"MAIL FROM:{variant.mail_from}\r\nRCPT TO:{variant.rcpt_to}\r\nRSET\r\n".encode())


def _reopen(ip: str, server_name: str, channel: Channel, settings: SessionSettings,
            closed_is_error: bool) -> tuple[SmtpSession, str | None]:
    """A fresh session; a refused port is a reason to skip unless it must be open."""
    try:
        return open_session(ip, server_name, channel, settings)
    except PortClosed:
        if closed_is_error:
            raise
        return SmtpSession(ip, channel.port, server_name, 0, 0), f"port {channel.port} closed (connection refused)"


def _closing(result: VariantResult) -> bool:
    return any(reply is not None and reply.code == CLOSING for reply in (result.mail, result.rcpt))


def _try_variant(session: SmtpSession, variant: RelayVariant, prologue: list[str],
                 mark: int) -> tuple[VariantResult, Reply | None]:
    """MAIL, RCPT if MAIL was accepted, RSET unless the server said 421: one command at a time.
    Returns the result and the RSET reply."""
    mail = session.command(f"MAIL FROM:{variant.mail_from}")
    rcpt = rset = None
    if mail.positive:
        rcpt = session.command(f"RCPT TO:{variant.rcpt_to}")
    if session.connected and not (mail.code == CLOSING or (rcpt and rcpt.code == CLOSING)):
        rset = session.command("RSET")
    return VariantResult(variant, mail, rcpt, _text(prologue, session, mark)), rset


def _text(prologue: list[str], session: SmtpSession, mark: int, note: str | None = None) -> str:
    return "\n".join([*prologue, "...", *([note] if note else []), *session.transcript.since(mark)])


def channels_for(ports: tuple[int, ...], implicit_tls_ports: tuple[int, ...]) -> tuple[Channel, ...]:
    """Plain and STARTTLS on every STARTTLS-capable port, implicit TLS on the others."""
    channels: list[Channel] = []
    for port in ports:
        if port in implicit_tls_ports:
            channels.append(Channel(port, "tls"))
        else:
            channels.extend((Channel(port, "plain"), Channel(port, "starttls")))
    return tuple(channels)

