"""Cross-checks (XCHK-*): does the API's setting agree with what the server does? Pure.

Each function takes the API requirement's evaluation, the setting as read (a Reading), and the
external observation in plain types (relayed variants, catch-all acceptance, accepted TLS
versions). Agreement passes. A setting that promises more than the server delivers is an
*ineffective setting* (failed); a setting that allows what the server refuses is a disagreement
too (failed: the audited SMTP/TLS endpoint may not be this SmarterMail, or another layer acts).
If the API side could not be read, or its value is only a guess (an assumed numeric enum), the
cross-check is skipped with the API's reason. Each verdict rests on what the API side rests on
(``basis``); messages and evidence pass through redact().
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from typing import Any

from mailaudit.evaluate.api import RELAY_LABELS
from mailaudit.fieldmap import Reading
from mailaudit.redact import redact
from mailaudit.verdict import Evaluation, Outcome

LEGACY_TLS = ("TLSv1.0", "TLSv1.1")    # the versions TLS-NO-LEGACY-TLS probes


def _on_api_basis(function: Callable[..., Evaluation]) -> Callable[..., Evaluation]:
    """The cross-check rests on what its API evaluation rests on; its text is redacted."""
    @functools.wraps(function)
    def wrapper(api: Evaluation, *args: Any, **kwargs: Any) -> Evaluation:
        evaluation = function(api, *args, **kwargs)
        return dataclasses.replace(evaluation, basis=evaluation.basis or api.basis,
                                   message=redact(evaluation.message), evidence=redact(evaluation.evidence))
    return wrapper


def _api_unusable(api: Evaluation, readings: list[Reading | None]) -> Evaluation | None:
    """Skip when the API side was not decided (skipped/inconclusive) or a reading is unusable."""
    if api.outcome in (Outcome.SKIPPED, Outcome.INCONCLUSIVE):
        return Evaluation.skipped_(f"the API side could not be judged: {api.message}", api.evidence)
    bad = [r for r in readings if r is not None and not r.ok]
    if bad:
        return Evaluation.skipped_("the API side is not readable: " + "; ".join(r.why_unreadable() for r in bad),
                                   api.evidence)
    return None


def _some(items: tuple[str, ...], shown: int = 4) -> str:
    """The first few items, and how many more (the evidence lists them all)."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


def _proof(api: Evaluation, observed: str) -> str:
    return f"{api.evidence}\n\nexternal observation: {observed}".strip()


# --- XCHK-RELAY -------------------------------------------------------------------------------

@_on_api_basis
def relay_crosscheck(api: Evaluation, setting: Reading, relayed_variants: tuple[str, ...],
                     undecided_variants: tuple[str, ...] = ()) -> Evaluation:
    """XCHK-RELAY: Allow Relay and the SMTP relay probe agree.

    Nobody / Only Local Users promise that unauthenticated outsiders cannot relay: any relayed
    variant makes the setting ineffective. Only Local Domains lets senders claiming a local
    domain relay, which spoofed-sender variants do: relaying there is inconclusive. Anyone
    promises an open relay: a server refusing every variant disagrees with it.
    """
    skipped = _api_unusable(api, [setting])
    if skipped:
        return skipped
    label = RELAY_LABELS.get(setting.value, str(setting.value))
    relayed, undecided = tuple(relayed_variants), tuple(undecided_variants)
    observed = (f"relayed {len(relayed)} variant(s): {', '.join(relayed)}" if relayed
                else "no relay variant was accepted")
    if undecided:
        observed += f"; undecided (4xx): {', '.join(undecided)}"
    proof = _proof(api, observed)
    if not relayed and undecided:
        return Evaluation.inconclusive_(f"Allow Relay is {label}; the server relayed nothing but left "
                                        f"{len(undecided)} variant(s) undecided (4xx)", proof)
    if setting.value in ("nobody", "local_users"):
        if relayed:
            return Evaluation.failed_(f"ineffective setting: Allow Relay is {label}, yet the server relayed "
                                      f"for an unauthenticated outsider ({_some(relayed)})", proof)
        return Evaluation.passed_(f"Allow Relay is {label} and the server refused every relay variant", proof)
    if setting.value == "local_domains":
        if relayed:
            return Evaluation.inconclusive_(f"Allow Relay is {label}, which lets senders claiming a local domain "
                                            f"relay; the server relayed {_some(relayed)}", proof)
        return Evaluation.passed_(f"Allow Relay is {label} and the server refused every relay variant", proof)
    if relayed:
        return Evaluation.passed_(f"Allow Relay is {label} and the server relays, as the setting says "
                                  "(API-RELAY and SMTP-OPEN-RELAY report the open relay)", proof)
    return Evaluation.failed_(f"the API says Allow Relay is {label}, but the server refused every relay "
                              "variant: the audited SMTP service may not be this SmarterMail", proof)


# --- XCHK-CATCHALL ----------------------------------------------------------------------------

@_on_api_basis
def catchall_crosscheck(api: Evaluation, domain: str, setting: Reading | None, accepted: bool | None,
                        transcript: str = "") -> Evaluation:
    """XCHK-CATCHALL: the audited domain's catch-all setting and the SMTP probe agree.

    ``setting`` is the domain's catch-all reading, or None when the API does not host the domain.
    """
    if setting is None:
        return Evaluation.skipped_(f"the API lists no domain {domain}: nothing to compare "
                                   "(is --domain the domain this SmarterMail hosts?)", api.evidence)
    if not setting.ok:
        return Evaluation.skipped_(f"the API side is not readable: {setting.why_unreadable()}", api.evidence)
    has_catchall = bool(str(setting.value).strip())
    observed = {True: "a random local part was accepted", False: "a random local part was refused",
                None: "a random local part was answered 4xx (undecided)"}[accepted]
    proof = _proof(api, f"{domain}: {observed}\n{transcript}".strip())
    if accepted is None:
        return Evaluation.inconclusive_(f"{domain}: the server neither accepted nor refused a random "
                                        "recipient (4xx); cannot compare with the API", proof)
    if not has_catchall and accepted:
        return Evaluation.failed_(f"ineffective setting: {domain} has no catch-all in the API, yet the server "
                                  "accepted mail for a random, surely-nonexistent recipient", proof)
    if has_catchall and not accepted:
        return Evaluation.failed_(f"the API says {domain} has catch-all {setting.value!r}, but the server "
                                  "refused a random recipient: the setting and the server disagree", proof)
    state = f"catch-all {setting.value!r}" if has_catchall else "no catch-all"
    return Evaluation.passed_(f"{domain}: {state} in the API and the server "
                              f"{'accepts' if accepted else 'refuses'} unknown recipients accordingly", proof)


# --- XCHK-TLS ---------------------------------------------------------------------------------

def tls_label(version: str) -> str | None:
    """Normalise a TLS version name: 'TLSv1', 'TLS 1.0', 'tls1_0' -> 'TLSv1.0'; 'SSL 3.0' -> 'SSLv3'."""
    text = version.strip().lower().replace("_", ".").replace(" ", "")
    match = re.fullmatch(r"(ssl|tls)v?(\d)(?:\.(\d))?", text)
    if not match:
        return None
    family, major, minor = match.group(1), match.group(2), match.group(3) or "0"
    if family == "ssl":
        return f"SSLv{major}"
    return f"TLSv{major}.{minor}"


@_on_api_basis
def tls_crosscheck(api: Evaluation, settings: dict[str, Reading], accepted_versions: frozenset[str],
                   transcript: str = "", versions: tuple[str, ...] = LEGACY_TLS) -> Evaluation:
    """XCHK-TLS: the Security Protocols switches agree with the versions the server accepts.

    ``settings`` maps 'SSLv3'/'TLSv1.0'/... to the API reading; ``accepted_versions`` is what the
    TLS probe saw accepted on any probed port.
    """
    checked = [settings[v] for v in versions if v in settings]
    bad = [r for r in checked if not r.ok]
    if bad:
        return Evaluation.skipped_("the API side is not readable: " + "; ".join(r.why_unreadable() for r in bad),
                                   api.evidence)
    accepted = {label for v in accepted_versions if (label := tls_label(v))}
    names = {r.key: v for v, r in settings.items()}
    ineffective = [names[r.key] for r in checked if r.value is False and names[r.key] in accepted]
    unused = [names[r.key] for r in checked if r.value is True and names[r.key] not in accepted]
    observed = f"accepted on the probed ports: {', '.join(sorted(accepted)) or 'none of ' + ', '.join(versions)}"
    proof = _proof(api, f"{observed}\n{transcript}".strip())
    if ineffective:
        return Evaluation.failed_(f"ineffective setting: the API disables {', '.join(ineffective)}, yet the server "
                                  "accepts it (disable it in Windows SCHANNEL too)", proof)
    if unused:
        return Evaluation.failed_(f"the API allows {', '.join(unused)}, but no probed port accepted it: the "
                                  "setting and the server disagree", proof)
    return Evaluation.passed_(f"the API's TLS versions agree with the server for {', '.join(versions)}", proof)
