"""Judging the SMTP hardening dialogues: pure functions from probe results to evaluations.

5xx refuses, 2xx accepts, 4xx cannot decide. Every message says what was expected and what the
server answered, quoting the command; the transcript is the evidence.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace

from mailaudit.errors import CannotJudge
from mailaudit.probes.smtp import Reply
from mailaudit.probes.smtp_checks import (
    AUTH_NOT_BLOCKED,
    AuthAttempt,
    AuthMatchResult,
    Envelope,
    EnvelopeCheck,
    PortSnapshot,
    PtrAnswer,
    RepeatResult,
    VrfyResult,
)
from mailaudit.verdict import Evaluation, combine

TRANSCRIPT = "SMTP transcript"

# -- banner disclosure --------------------------------------------------------------------------------

# Products and operating systems that greetings are known to name (longest first, matched as words).
PRODUCTS = (
    "Microsoft ESMTP MAIL Service", "Microsoft Exchange", "Exchange Server", "Kerio Connect", "Lotus Domino",
    "Apache James", "SmarterMail", "hMailServer", "CommuniGate", "MailEnable", "OpenSMTPD", "Sendmail",
    "Postfix", "Exim", "qmail", "MDaemon", "Zimbra", "IceWarp", "Merak", "Haraka", "Courier", "Axigen",
    "Domino", "ArGoSoft", "XMail", "Mercury", "IronPort", "Barracuda", "Kerio", "Debian", "Ubuntu",
    "CentOS", "Red Hat", "FreeBSD", "OpenBSD", "Windows",
)
_PRODUCT_RE = re.compile(r"(?<![\w-])(" + "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in PRODUCTS)
                         + r")(?![\w-])", re.IGNORECASE)
# EHLO keywords only one product sends.
_FINGERPRINTS = {"XEXCH50": "Microsoft Exchange", "X-EXPS": "Microsoft Exchange",
                 "X-LINK2STATE": "Microsoft Exchange", "X-ANONYMOUSTLS": "Microsoft Exchange"}
_VERSION_RE = re.compile(r"(?<![\w.])[vV]?\d+(?:\.\d+)+(?![\w.]*\w)")
_VERSION_WORD_RE = re.compile(r"\b(?:version|build\s*\d+|release\s*\d+)\b", re.IGNORECASE)
_STATUS_CODE_RE = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}\s+")
_HOSTNAME_RE = re.compile(r"^(?=.{1,253}\.?$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                          r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$")


def _is_ipv4(text: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(text), ipaddress.IPv4Address)
    except ValueError:
        return False


def _without_host(line: str) -> str:
    """A first line of a greeting or EHLO reply without its leading host name (which may contain
    digits or a product-like word chosen by the admin)."""
    first, _, rest = line.partition(" ")
    return rest if _HOSTNAME_RE.match(first) else line


def disclosures(lines: Iterable[str], first_is_host_line: bool = True) -> list[str]:
    """What the lines reveal: product names, version numbers, version keywords (deduplicated).

    IPv4 addresses, enhanced status codes (2.0.0) and the leading host name are not versions."""
    found: list[str] = []
    for index, raw in enumerate(lines):
        line = _STATUS_CODE_RE.sub("", raw)
        if index == 0 and first_is_host_line:
            line = _without_host(line)
        keyword = line.split(" ", 1)[0].upper()
        if keyword in _FINGERPRINTS:
            found.append(f"product {_FINGERPRINTS[keyword]!r} (EHLO keyword {keyword})")
        found += [f"product {m.group(1)!r}" for m in _PRODUCT_RE.finditer(line)]
        found += [f"version {m.group(0)!r}" for m in _VERSION_RE.finditer(line) if not _is_ipv4(m.group(0))]
        found += [f"version keyword {m.group(0)!r}" for m in _VERSION_WORD_RE.finditer(line)]
    return list(dict.fromkeys(found))


def evaluate_banner_disclosure(snapshot: PortSnapshot) -> Evaluation:
    """The greeting and every EHLO reply of a port name no product and no version."""
    findings = []
    for label, reply in snapshot.banner_replies():
        revealed = disclosures(reply.lines)
        if revealed:
            findings.append(f"the {label} ({reply.text[:160]}) reveals {', '.join(revealed)}")
    if findings:
        return Evaluation.failed_(f"port {snapshot.port}: " + "; ".join(findings)
                                  + " — expected no product or version", snapshot.transcript, TRANSCRIPT)
    greeting = snapshot.greeting.text if snapshot.greeting else "(none)"
    return Evaluation.passed_(f"port {snapshot.port}: greeting {greeting[:160]} and EHLO replies name no product "
                              "or version", snapshot.transcript, TRANSCRIPT)


# -- banner host name ---------------------------------------------------------------------------------

def greeting_host(greeting: Reply | None) -> str | None:
    """The host name a 220 greeting starts with (RFC 5321 §4.2: ``220 domain text``), if any."""
    if greeting is None or not greeting.lines:
        return None
    first = greeting.lines[0].strip().split(" ", 1)[0]
    return first.rstrip(".").lower() if _HOSTNAME_RE.match(first) else None


def evaluate_banner_hostname(snapshot: PortSnapshot, ptr: PtrAnswer) -> Evaluation:
    """The greeting names the host that the PTR record of the server's IP names."""
    greeting = snapshot.greeting.text[:160] if snapshot.greeting else "(none)"
    evidence = (f"{snapshot.transcript}\n\nDNS: {ptr.query} PTR -> "
                f"{', '.join(ptr.names) if ptr.names else '(no PTR record)'}")
    host = greeting_host(snapshot.greeting)
    if host is None:
        return Evaluation.failed_(f"port {snapshot.port}: greeting {greeting} does not start with a host name "
                                  f"(expected the PTR name of {ptr.ip})", evidence, TRANSCRIPT)
    if not ptr.names:
        return Evaluation.failed_(f"{ptr.ip} has no PTR record ({ptr.query}); the greeting names {host} — "
                                  "expected a PTR naming the greeting host", evidence, TRANSCRIPT)
    if host in ptr.names:
        return Evaluation.passed_(f"greeting host {host} matches the PTR of {ptr.ip}", evidence, TRANSCRIPT)
    return Evaluation.failed_(f"greeting {greeting} names {host}, but the PTR of {ptr.ip} is "
                              f"{', '.join(ptr.names)} — expected them to match", evidence, TRANSCRIPT)


# -- AUTH only after TLS -------------------------------------------------------------------------------

def evaluate_auth_tls_only(snapshot: PortSnapshot, attempt: AuthAttempt) -> Evaluation:
    """AUTH is neither advertised before STARTTLS nor taken up when tried in plaintext."""
    evidence = f"{snapshot.transcript}\n\n{attempt.transcript}"
    problems = []
    if snapshot.auth_before_tls:
        problems.append(f"EHLO before STARTTLS on port {snapshot.port} offers AUTH "
                        f"{' '.join(sorted(snapshot.auth_before_tls))}")
    if attempt.processed:
        problems.append(f"AUTH PLAIN with a bogus credential before STARTTLS was answered {attempt.reply.text[:120]} "
                        "(taken up, so credentials travel in plaintext)")
    if problems:
        return Evaluation.failed_("; ".join(problems) + " — expected AUTH only after STARTTLS", evidence, TRANSCRIPT)
    if attempt.reply.transient:
        return Evaluation.inconclusive_(
            f"port {snapshot.port}: AUTH before STARTTLS answered {attempt.reply.text[:120]} "
            "(temporary; cannot tell whether it would be taken up)", evidence, TRANSCRIPT)
    return Evaluation.passed_(f"port {snapshot.port}: AUTH not offered before STARTTLS, and refused when tried "
                              f"({attempt.reply.text[:120]})", evidence, TRANSCRIPT)


# -- envelopes: catch-all, local spoof, submission, auth match -------------------------------------------

def _judge_refusal(envelope: Envelope, what: str, accepted_means: str, transcript: str) -> Evaluation:
    """Refused (5xx) passes, accepted fails, 4xx or a refused MAIL before a needed RCPT is undecided."""
    if envelope.accepted:
        return Evaluation.failed_(f"{what}: {envelope.describe()} — {accepted_means}", transcript, TRANSCRIPT)
    if envelope.refused:
        return Evaluation.passed_(f"{what}: refused, {envelope.describe()}", transcript, TRANSCRIPT)
    return Evaluation.inconclusive_(f"{what}: {envelope.describe()} (temporary; cannot decide)",
                                    transcript, TRANSCRIPT)


@dataclass(frozen=True)
class CatchallObservation:
    """Whether the server accepted a random nonexistent local recipient (for cross-checks)."""

    accepted: bool
    decided: bool
    recipient: str
    reply: str
    transcript: str = ""


def evaluate_catchall(check: EnvelopeCheck) -> Evaluation:
    """RCPT TO a random, surely nonexistent local part is refused with 5xx."""
    envelope = check.envelopes[0]
    if not envelope.mail.positive:
        return Evaluation.inconclusive_(
            f"MAIL FROM:{envelope.mail_from} answered {envelope.mail.text[:120]}: cannot test the recipient",
            check.transcript, TRANSCRIPT)
    return _judge_refusal(envelope, "random nonexistent local recipient",
                          "the server accepts mail for users that do not exist (catch-all)", check.transcript)


def observe_catchall(check: EnvelopeCheck) -> CatchallObservation:
    """The catch-all verdict as plain data: accepted, and whether the answer decided it."""
    envelope = check.envelopes[0]
    return CatchallObservation(envelope.accepted, envelope.accepted or envelope.refused,
                               envelope.rcpt_to, envelope.deciding.text, check.transcript)


def _control_problem(control: Envelope, transcript: str) -> Evaluation | None:
    """A control envelope that should be accepted: if it is not, nothing else can be judged."""
    if control.accepted:
        return None
    return Evaluation.inconclusive_(
        f"control {control.describe()} was not accepted, so a refusal cannot be told apart from "
        f"an unknown or blocked recipient ({control.label})", transcript, TRANSCRIPT)


def evaluate_local_spoof(check: EnvelopeCheck) -> Evaluation:
    """Unauthenticated MAIL FROM a local address to a local recipient is refused.

    ``envelopes[0]`` is the control (null sender to the same recipient, which must be accepted)."""
    control, spoofs = check.envelopes[0], check.envelopes[1:]
    problem = _control_problem(control, check.transcript)
    if problem:
        return problem
    judged = [_judge_refusal(e, f"unauthenticated {e.label}",
                             "a forged local sender is accepted without authentication", check.transcript)
              for e in spoofs]
    return _combine(judged, f"every forged local sender was refused ({check.channel})")


def evaluate_submission(check: EnvelopeCheck) -> Evaluation:
    """On a submission port a transaction without AUTH is refused."""
    return _judge_refusal(check.envelopes[0], f"port {check.channel} without AUTH",
                          "the submission port takes mail from an unauthenticated client", check.transcript)


def evaluate_auth_match(result: AuthMatchResult) -> Evaluation:
    """Logged in as one user, MAIL FROM another local user and another domain is refused.

    ``envelopes[0]`` is the control (the user's own address, which must be accepted)."""
    if not result.auth.positive:
        return Evaluation.inconclusive_(
            f"AUTH as {result.user} on {result.channel} answered {result.auth.text[:120]} (temporary; cannot test)",
            result.transcript, TRANSCRIPT)
    control, others = result.envelopes[0], result.envelopes[1:]
    problem = _control_problem(control, result.transcript)
    if problem:
        return problem
    judged = [_judge_refusal(e, f"logged in as {result.user}, {e.label}",
                             "an authenticated user may send as someone else", result.transcript)
              for e in others]
    return _combine(judged, f"logged in as {result.user}, every foreign sender was refused ({result.channel})")


def _combine(judged: list[Evaluation], summary_ok: str) -> Evaluation:
    """``combine`` several verdicts sharing one transcript (kept once)."""
    combined = combine([Evaluation(e.outcome, e.message) for e in judged], summary_ok)
    message = combined.message
    if combined.passed and judged:
        message = f"{summary_ok}: " + "; ".join(e.message for e in judged)
    evidence = judged[0].evidence if judged else ""
    return Evaluation(combined.outcome, message, evidence, TRANSCRIPT)


# -- VRFY and EXPN ------------------------------------------------------------------------------------------

NOT_CONFIRMING_SUCCESS = 252  # RFC 5321 §3.5.3: "cannot VRFY user, but will accept message"


def _confirms(reply: Reply) -> bool:
    """A success other than 252 (250, 251, or any other 2xx) says the user exists."""
    return reply.positive and reply.code != NOT_CONFIRMING_SUCCESS


def evaluate_vrfy_expn(result: VrfyResult) -> Evaluation:
    """VRFY and EXPN do not confirm users: 250/251 (any 2xx but 252) for a user fails, and so does
    a 252 for existing users next to a refusal for a nonexistent one (the difference confirms them).
    A 3xx answer is none to VRFY or EXPN: the evaluator cannot judge it."""
    failures, undecided, seen = [], [], []
    odd = next((q for q in result.queries if q.reply.intermediate), None)
    if odd is not None:
        raise CannotJudge(f"{odd.command} {odd.argument} answered {odd.reply.text[:120]}: a 3xx reply is no "
                          f"answer to {odd.command} (RFC 5321 §4.3.2)", result.transcript, TRANSCRIPT)
    for command in ("VRFY", "EXPN"):
        queries = [q for q in result.queries if q.command == command]
        unknown = next((q for q in queries if not q.exists), None)
        for query in (q for q in queries if q.exists):
            said = f"{command} {query.argument} answered {query.reply.text[:120]}"
            seen.append(said)
            if _confirms(query.reply):
                failures.append(f"{said} — confirms the user")
            elif query.reply.positive and unknown is not None and unknown.reply.permanent:
                failures.append(f"{said} while {command} {unknown.argument} (nonexistent) answered "
                                f"{unknown.reply.text[:120]} — the difference confirms which users exist")
            elif query.reply.transient:
                undecided.append(f"{said} (temporary; cannot decide)")
    if failures:
        return Evaluation.failed_("; ".join(failures), result.transcript, TRANSCRIPT)
    if undecided:
        return Evaluation.inconclusive_("; ".join(undecided), result.transcript, TRANSCRIPT)
    return Evaluation.passed_("no user confirmed: " + "; ".join(seen), result.transcript, TRANSCRIPT)


# -- intrusive: harvest and brute force ----------------------------------------------------------------------

HARVEST_KEY = "smtp.harvest_attempts"
BRUTEFORCE_KEY = "smtp.bruteforce_attempts"


def _codes(replies: tuple[Reply, ...] | list[Reply]) -> str:
    counts = Counter(r.code for r in replies)
    return ", ".join(f"{n}×{code}" for code, n in sorted(counts.items()))


def _cited(evaluation: Evaluation, key: str) -> Evaluation:
    """The evaluation with the policy leaf whose threshold decided it."""
    return replace(evaluation, policy_keys=(key,))


def evaluate_harvest(result: RepeatResult) -> Evaluation:
    """After at most ``limit`` unknown recipients in a session the server drops it or answers 421.

    Judged against a control: MAIL FROM:<> and RCPT TO a recipient that exists must be accepted
    first, else nothing can be concluded. Only refusals (5xx) show the server judging unknown
    recipients: one accepted (2xx, whatever its text says) is an acceptance, and 4xx everywhere
    (greylisting) decides nothing."""
    return _cited(_judge_harvest(result), HARVEST_KEY)


def _judge_harvest(result: RepeatResult) -> Evaluation:
    where, evidence = result.channel, result.transcript
    if result.prelude is not None and not result.prelude.positive:
        return Evaluation.inconclusive_(
            f"{where}: MAIL FROM:<> answered {result.prelude.text[:120]}: cannot try recipients", evidence, TRANSCRIPT)
    control = result.control
    if control is None or not control.positive:
        how = (f"the connection ended ({result.control_cut})" if result.control_cut
               else f"it answered {control.text[:120]}" if control is not None else "it was not tried")
        return Evaluation.inconclusive_(
            f"{where}: the control RCPT TO:<{result.control_address}> (a recipient that exists) was not accepted: "
            f"{how}; without it a cut-off cannot be told apart from a server that refuses or drops every "
            "recipient", evidence, TRANSCRIPT)
    answered = [r for r in result.replies if r.code != 421]
    refused = [r for r in answered if r.permanent]
    accepted = [r for r in answered if r.positive]
    codes = _codes(result.replies) or "none"
    seen = f"{len(answered)} unknown recipients answered ({codes})"
    unchecked = f"{len(answered)} unknown recipients answered in one session ({codes}) without 421 or disconnect"
    limit = f"policy: at most {result.limit}"
    cut_in_time = result.cut is not None and len(answered) <= result.limit
    if accepted:
        taken = f"{len(accepted)} of them were accepted with 2xx (e.g. {accepted[0].text[:100]})"
        if cut_in_time:
            return Evaluation.inconclusive_(
                f"{where}: the session was cut off after {seen} ({result.cut}), but {taken}: a 2xx is an "
                f"acceptance whatever its text says, so the cut-off cannot be credited to a harvest defence; "
                f"{limit}", evidence, TRANSCRIPT)
        return Evaluation.failed_(f"{where}: {unchecked}, and {taken} — expected a cut-off after at most "
                                  f"{result.limit}", evidence, TRANSCRIPT)
    if cut_in_time and refused:
        return Evaluation.passed_(f"{where}: the session was cut off after {seen} ({result.cut}); {limit}",
                                  evidence, TRANSCRIPT)
    if cut_in_time:
        return Evaluation.inconclusive_(
            f"{where}: the session was cut off after {seen} ({result.cut}) before any unknown recipient was "
            f"refused (5xx): cannot tell a harvest defence from a server that stops every session; {limit}",
            evidence, TRANSCRIPT)
    if len(refused) > result.limit:
        return Evaluation.failed_(f"{where}: {unchecked} — expected a cut-off after at most {result.limit}",
                                  evidence, TRANSCRIPT)
    return Evaluation.inconclusive_(
        f"{where}: {seen} without a cut-off, but only {len(refused)} were refused (5xx); temporary answers "
        f"(4xx, e.g. greylisting) reveal nothing and decide nothing; {limit}", evidence, TRANSCRIPT)


def evaluate_bruteforce(result: RepeatResult) -> Evaluation:
    """After at most ``limit`` failed AUTH attempts further attempts are blocked.

    A block counts only after the server has rejected at least one wrong password (535): a server
    that refuses AUTH from the start shows no defence, and a 3xx is no verdict on a password."""
    return _cited(_judge_bruteforce(result), BRUTEFORCE_KEY)


def _judge_bruteforce(result: RepeatResult) -> Evaluation:
    user, where, evidence = result.subject, result.channel, result.transcript
    note = f" ({result.note})" if result.note else ""
    accepted = [r for r in result.replies if r.positive]
    if accepted:
        return Evaluation.failed_(f"{where}: a random wrong password for {user}{note} was accepted "
                                  f"({accepted[0].text[:120]})", evidence, TRANSCRIPT)
    odd = next((r for r in result.replies if r.intermediate), None)
    if odd is not None:
        return Evaluation.inconclusive_(
            f"{where}: AUTH PLAIN with a wrong password for {user}{note} was answered {odd.text[:120]}, which is "
            "no verdict on the password (RFC 4954 §4 expects 235 or 535 to an initial response)", evidence, TRANSCRIPT)
    tried = [r for r in result.replies if r.code in AUTH_NOT_BLOCKED]
    rejected = [r for r in tried if r.code == 535]
    if result.cut is not None and len(tried) <= result.limit:
        if rejected:
            return Evaluation.passed_(
                f"{where}: blocked after {len(tried)} failed AUTH attempts for {user}{note} ({result.cut}); "
                f"policy: at most {result.limit}", evidence, TRANSCRIPT)
        return Evaluation.inconclusive_(
            f"{where}: AUTH for {user}{note} was stopped ({result.cut}) before any wrong password was rejected "
            "with 535: cannot tell a block from AUTH being unavailable", evidence, TRANSCRIPT)
    if any(r.code != 535 for r in tried):
        return Evaluation.inconclusive_(
            f"{where}: {len(tried)} wrong passwords for {user}{note} were answered {_codes(result.replies)} "
            "without a block; 454 means the server's authentication backend failed, so those attempts were "
            "not decided", evidence, TRANSCRIPT)
    return Evaluation.failed_(
        f"{where}: {len(tried)} wrong passwords for {user}{note} were each answered 535 "
        f"({_codes(result.replies)}), never blocked — expected a block after at most {result.limit}",
        evidence, TRANSCRIPT)
