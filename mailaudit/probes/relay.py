"""The open-relay probe: classic MAIL FROM / RCPT TO forms, each answered by RCPT, never DATA.

Every variant asks the server to accept a recipient at a domain that cannot receive mail
(example.net by default) without authentication. The dialogue is MAIL, RCPT, RSET per variant;
a fresh connection is opened after a few refusals so the server's error throttling (Postfix's
``smtpd_error_sleep_time``) does not slow the audit, and connections are strictly sequential.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailaudit.budget import Deadline
from mailaudit.errors import PortClosed, ProtocolError
from mailaudit.probes.smtp import ConnectionSlots, Reply, SmtpSession, offers

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
    """Run every variant on one channel, sequentially, reconnecting after a few refusals."""
    results: dict[str, VariantResult] = {}
    session: SmtpSession | None = None
    prologue: list[str] = []
    refusals, budget = 0, settings.refusals_per_session
    try:
        for variant in variants:
            for attempt in (1, 2):
                if session is None or not session.connected or refusals >= budget:
                    if session is not None:
                        session.close()
                    session, unavailable = _reopen(ip, server_name, channel, settings, closed_is_error)
                    if unavailable:
                        return ChannelResult(channel, {}, unavailable)
                    prologue, refusals = list(session.transcript.lines), 0
                mark = len(session.transcript.lines)
                try:
                    result = _try_variant(session, variant, prologue, mark)
                except ProtocolError as exc:
                    if attempt == 2:
                        results[variant.id] = VariantResult(
                            variant, None, None, _text(prologue, session, mark), error=str(exc))
                    continue
                if _closing(result) and attempt == 1:
                    # 421: the server cut the session short (error limits); retry in a fresh one
                    # and stay below the limit it just showed us.
                    budget = max(1, refusals)
                    session.close()
                    continue
                refusals += 0 if result.rcpt is not None and result.rcpt.positive else 1
                results[variant.id] = result
                break
    finally:
        if session is not None:
            session.close()
    return ChannelResult(channel, results)


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
    return any(reply is not None and reply.code == 421 for reply in (result.mail, result.rcpt))


def _try_variant(session: SmtpSession, variant: RelayVariant, prologue: list[str], mark: int) -> VariantResult:
    mail = session.command(f"MAIL FROM:{variant.mail_from}")
    rcpt = None
    if mail.positive:
        rcpt = session.command(f"RCPT TO:{variant.rcpt_to}")
    if session.connected and not (mail.code == 421 or (rcpt and rcpt.code == 421)):
        session.command("RSET")
    return VariantResult(variant, mail, rcpt, _text(prologue, session, mark))


def _text(prologue: list[str], session: SmtpSession, mark: int) -> str:
    return "\n".join([*prologue, "...", *session.transcript.since(mark)])


def channels_for(ports: tuple[int, ...], implicit_tls_ports: tuple[int, ...]) -> tuple[Channel, ...]:
    """Plain and STARTTLS on every STARTTLS-capable port, implicit TLS on the others."""
    channels: list[Channel] = []
    for port in ports:
        if port in implicit_tls_ports:
            channels.append(Channel(port, "tls"))
        else:
            channels.extend((Channel(port, "plain"), Channel(port, "starttls")))
    return tuple(channels)

