"""Cross-checks offline: the API's setting against the external observation (XCHK-*)."""

from __future__ import annotations

import pytest

from mailaudit.evaluate import xchk
from mailaudit.fieldmap import Reading, ReadState
from mailaudit.verdict import Evaluation, Outcome

API_PASSED = Evaluation.passed_("api ok", "api evidence")
API_FAILED = Evaluation.failed_("api bad", "api evidence")
API_SKIPPED = Evaluation.skipped_("not readable: check manually: Settings > Protocols", "api evidence")


def reading(key: str, value, raw=None, state: ReadState = ReadState.OK) -> Reading:
    """A reading as the snapshot would give it."""
    return Reading(key=key, state=state, value=value, raw=raw if raw is not None else value,
                   manual="Settings > somewhere", detail="answered 404")


# --- XCHK-RELAY -------------------------------------------------------------------------------

@pytest.mark.parametrize("setting, relayed, outcome", [
    ("nobody", (), Outcome.PASSED),
    ("nobody", ("25-plain/null-sender",), Outcome.FAILED),          # ineffective setting
    ("local_users", ("25-plain/percent-hack",), Outcome.FAILED),    # ineffective setting
    ("local_users", (), Outcome.PASSED),
    ("local_domains", ("25-plain/spoofed-local",), Outcome.INCONCLUSIVE),
    ("anyone", ("25-plain/null-sender",), Outcome.PASSED),          # agree (both report the relay)
    ("anyone", (), Outcome.FAILED),                                  # disagree
])
def test_relay_crosscheck(setting, relayed, outcome):
    """Allow Relay vs the relay probe: a restrictive setting with relaying is ineffective."""
    api = API_PASSED if setting == "nobody" else API_FAILED
    evaluation = xchk.relay_crosscheck(api, reading("smtp_allow_relay", setting), relayed)
    assert evaluation.outcome is outcome, evaluation.message
    if outcome is Outcome.FAILED and relayed:
        assert "ineffective setting" in evaluation.message


def test_relay_crosscheck_undecided_is_inconclusive():
    """No relay but 4xx answers: cannot confirm the setting."""
    evaluation = xchk.relay_crosscheck(API_PASSED, reading("smtp_allow_relay", "nobody"), (), ("25/x",))
    assert evaluation.outcome is Outcome.INCONCLUSIVE


def test_relay_crosscheck_skips_when_api_unreadable():
    """No API value, no comparison: skipped with the API's reason (never passed)."""
    missing = reading("smtp_allow_relay", None, state=ReadState.MISSING)
    evaluation = xchk.relay_crosscheck(API_SKIPPED, missing, ())
    assert evaluation.outcome is Outcome.SKIPPED and "check manually" in evaluation.message


# --- XCHK-CATCHALL ----------------------------------------------------------------------------

@pytest.mark.parametrize("catchall, accepted, outcome", [
    ("", False, Outcome.PASSED),
    ("", True, Outcome.FAILED),           # ineffective: unknown users accepted without a catch-all
    ("catchall", True, Outcome.PASSED),
    ("catchall", False, Outcome.FAILED),
    ("", None, Outcome.INCONCLUSIVE),     # 4xx
])
def test_catchall_crosscheck(catchall, accepted, outcome):
    """The domain's catch-all vs RCPT TO a random local part."""
    setting = reading("domain_catch_all", catchall)
    evaluation = xchk.catchall_crosscheck(API_PASSED, "weak.test", setting, accepted, "RCPT TO:<x> -> 250")
    assert evaluation.outcome is outcome, evaluation.message
    assert "RCPT TO" in evaluation.evidence


def test_catchall_crosscheck_skips_for_a_domain_the_api_does_not_host():
    """--domain not hosted by this SmarterMail: nothing to compare."""
    assert xchk.catchall_crosscheck(API_PASSED, "other.test", None, True).outcome is Outcome.SKIPPED


# --- XCHK-TLS ---------------------------------------------------------------------------------

def tls_settings(**enabled: bool) -> dict[str, Reading]:
    """Security Protocols readings by version label."""
    names = {"ssl3": "SSLv3", "tls10": "TLSv1.0", "tls11": "TLSv1.1", "tls12": "TLSv1.2", "tls13": "TLSv1.3"}
    return {names[k]: reading(f"tls_{k}_enabled", v) for k, v in enabled.items()}


HARDENED_TLS = tls_settings(ssl3=False, tls10=False, tls11=False, tls12=True, tls13=True)
WEAK_TLS = tls_settings(ssl3=False, tls10=False, tls11=True, tls12=True, tls13=True)


@pytest.mark.parametrize("settings, accepted, outcome", [
    (HARDENED_TLS, frozenset(), Outcome.PASSED),
    (HARDENED_TLS, frozenset({"TLSv1.2", "TLSv1.3"}), Outcome.PASSED),
    (HARDENED_TLS, frozenset({"TLSv1"}), Outcome.FAILED),                  # ineffective setting
    (WEAK_TLS, frozenset({"TLSv1.0", "TLSv1.1"}), Outcome.FAILED),        # 1.0 off in the API, served
    (WEAK_TLS, frozenset({"TLS 1.1"}), Outcome.PASSED),                   # agree on both
    (WEAK_TLS, frozenset(), Outcome.FAILED),                              # API allows 1.1, nobody serves it
])
def test_tls_crosscheck(settings, accepted, outcome):
    """Security Protocols vs the legacy versions the TLS probe saw accepted."""
    evaluation = xchk.tls_crosscheck(API_PASSED, settings, accepted)
    assert evaluation.outcome is outcome, evaluation.message


def test_tls_crosscheck_names_the_ineffective_version():
    """The message names the version the API disables but the server accepts."""
    evaluation = xchk.tls_crosscheck(API_FAILED, WEAK_TLS, frozenset({"TLSv1.0", "TLSv1.1"}))
    assert "ineffective setting" in evaluation.message and "TLSv1.0" in evaluation.message


@pytest.mark.parametrize("text, label", [("TLSv1", "TLSv1.0"), ("TLS 1.0", "TLSv1.0"), ("tls1_1", "TLSv1.1"),
                                         ("TLSv1.3", "TLSv1.3"), ("SSL 3.0", "SSLv3"), ("SSLv3", "SSLv3"),
                                         ("bogus", None)])
def test_tls_labels(text, label):
    """Version names from any family normalise to one spelling."""
    assert xchk.tls_label(text) == label


def test_tls_crosscheck_skips_when_api_unreadable():
    """Unreadable Security Protocols: skipped."""
    settings = {**HARDENED_TLS, "TLSv1.0": reading("tls_tls10_enabled", None, state=ReadState.ABSENT)}
    assert xchk.tls_crosscheck(API_SKIPPED, settings, frozenset()).outcome is Outcome.SKIPPED


def test_crosschecks_skip_a_guessed_api_value():
    """An assumed numeric enum (GUESSED) is no API side to compare: skipped, never passed."""
    guessed = Reading(key="smtp_allow_relay", state=ReadState.GUESSED, value="nobody", raw=0,
                      manual="Settings > Protocols > SMTP In > Allow Relay",
                      guesses=("protocolSettings.smtpIn.allowRelay = 0 -> nobody",))
    api = Evaluation.inconclusive_("the API's value cannot decide", "api evidence")
    evaluation = xchk.relay_crosscheck(api, guessed, ())
    assert evaluation.outcome is Outcome.SKIPPED
    tls = {**HARDENED_TLS, "TLSv1.0": guessed}
    assert xchk.tls_crosscheck(API_PASSED, tls, frozenset()).outcome is Outcome.SKIPPED


def test_crosschecks_carry_the_api_basis():
    """A cross-check rests on what its API verdict rests on."""
    api = Evaluation(Outcome.PASSED, "ok", "e", basis="assumed: field smtp_allow_relay")
    evaluation = xchk.relay_crosscheck(api, reading("smtp_allow_relay", "nobody"), ())
    assert evaluation.basis == "assumed: field smtp_allow_relay"
