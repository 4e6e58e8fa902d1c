"""The SmarterMail API client against the simulator: login, tokens, errors, faults, TLS, redaction."""

from __future__ import annotations

import copy

import pytest

from mailaudit.errors import ApiError
from mailaudit.evaluate.api import evaluate_relay
from mailaudit.fieldmap import ReadState, load_fieldmap
from mailaudit.policy import load_policy
from mailaudit.probes.smartermail import ApiSettings, SmarterMailClient, take_snapshot
from selftests.unit.api_simulator import (
    LAB_PASSWORD,
    LAB_USER,
    OFFLINE_URL,
    ROOT,
    offline_session,
    profile,
    running_sim,
)

FIELDMAP = load_fieldmap()
POLICY = load_policy(ROOT / "policies" / "baseline.yaml").api


def settings(user: str = LAB_USER, password: str = LAB_PASSWORD, **kwargs) -> ApiSettings:
    """Settings for the offline simulator."""
    return ApiSettings(OFFLINE_URL, user, password, **{"retries": 2, "backoff_s": 0.0, **kwargs})


def snapshot(name: str = "hardened", data=None, **kwargs):
    """A snapshot through the offline simulator: (snapshot, state, adapter)."""
    session, state, adapter = offline_session(name, data)
    snap = take_snapshot(settings(**kwargs), FIELDMAP, "mail.sim.test", session=session, sleep=lambda s: None)
    return snap, state, adapter


def live_tokens(state) -> list:
    return [t for t in state.tokens.values() if t.expires > 0]


# --- the happy path ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["hardened", "weak"])
def test_snapshot_reads_every_field_of_both_profiles(name):
    """Every field of the map is read from both lab profiles: with a trusted meaning, or (an
    assumed enum sent as a number, weak's throttle actions) as a guess that is never judged."""
    snap, _, _ = snapshot(name)
    assert len(snap.domains) == 2
    for key, spec in FIELDMAP.fields.items():
        domains = snap.domains if FIELDMAP.endpoints[spec.endpoint].per_domain else (None,)
        for domain in domains:
            reading = snap.read(key, domain)
            assert reading.ok or (reading.state is ReadState.GUESSED and name == "weak"), reading.why_unreadable()


def test_snapshot_logs_out_every_token():
    """The run logs out at the end: no token (main or impersonation) stays valid on the server."""
    _, state, adapter = snapshot()
    assert not live_tokens(state)
    assert ("POST", "/api/v1/auth/logout-user") in adapter.requests


def test_each_endpoint_is_read_once():
    """Probe once: every (endpoint, domain) request happens once per snapshot."""
    snap, _, adapter = snapshot()
    sysadmin = [r for r in adapter.requests if "/settings/sysadmin/" in r[1] and "manage-domain" not in r[1]]
    assert len(sysadmin) == len(set(sysadmin))
    per_domain = [r for r in adapter.requests if "/settings/domain/" in r[1]]   # one token per domain
    assert all(per_domain.count(r) == len(snap.domains) for r in per_domain)


def test_unique_client_id_per_client():
    """Each run uses its own clientId, so it never kills another session's token [C1]."""
    session, _, _ = offline_session("hardened")
    first = SmarterMailClient(settings(), FIELDMAP, session=session)
    second = SmarterMailClient(settings(), FIELDMAP, session=session)
    assert first.client_id != second.client_id and first.client_id.startswith("mailaudit-")


def test_same_client_id_login_revokes_previous_token():
    """The simulator keeps one token per (user, clientId), like the real server [C1]."""
    session, state, _ = offline_session("hardened")
    client = SmarterMailClient(settings(), FIELDMAP, session=session)
    client.login()
    old = client._tokens.access
    client.login()
    assert old not in state.tokens and client._tokens.access in state.tokens


# --- login failures: one clear line each ------------------------------------------------------

@pytest.mark.parametrize("name", ["hardened", "weak"])   # 200 + success:false, and HTTP 401
def test_wrong_password_is_one_clear_line(name):
    """Wrong credentials give one ApiError line naming the cause, never the password."""
    with pytest.raises(ApiError) as info:
        snapshot(name, password="not-the-password")
    text = str(info.value)
    assert "wrong user name or password" in text and "\n" not in text
    assert "not-the-password" not in text


@pytest.mark.parametrize("user, expected", [
    ("mfa-admin", "two-factor"),
    ("expired-admin", "must change its password"),
    ("postmaster@hardened.test", "domain administrator"),
])
def test_unusable_accounts_are_one_clear_line(user, expected):
    """Two-factor-only, password-change-required and domain-admin accounts each give one line."""
    with pytest.raises(ApiError, match=expected) as info:
        snapshot(user=user)
    assert LAB_PASSWORD not in str(info.value)


def test_domain_admin_token_on_sysadmin_endpoint_is_403_and_one_line():
    """Even when the login answer does not tell the role, a 403 on the domain list stops the run."""
    from selftests.unit.api_simulator import smsim
    session, state, _ = offline_session("hardened")
    state.fault = smsim().Fault("forbidden", match="/api/v1/settings/sysadmin/domains")
    with pytest.raises(ApiError, match="answered 403"):
        take_snapshot(settings(), FIELDMAP, "mail.sim.test", session=session, sleep=lambda s: None)


# --- tokens -------------------------------------------------------------------------------------

def test_refresh_before_expiry_rotates_tokens():
    """With tokens expiring within the refresh margin, the client refreshes; the old refresh token dies."""
    data = copy.deepcopy(profile("hardened"))
    data["behaviour"]["access_token_seconds"] = 30          # < 60 s margin: refresh before each call
    session, state, adapter = offline_session("hardened", data)
    client = SmarterMailClient(settings(), FIELDMAP, session=session)
    client.login()
    first_refresh = client._tokens.refresh
    client.call(FIELDMAP.endpoints["antispam"])
    assert ("POST", "/api/v1/auth/refresh-token") in adapter.requests
    assert first_refresh not in state.tokens          # rotated: the used refresh token is gone
    client.logout()


def test_a_401_is_refreshed_once_and_retried():
    """A token the server dropped (401) is refreshed once and the call retried."""
    session, state, adapter = offline_session("hardened")
    client = SmarterMailClient(settings(), FIELDMAP, session=session)
    client.login()
    del state.tokens[client._tokens.access]            # the server forgot the access token
    answer = client.call(FIELDMAP.endpoints["antispam"])
    assert answer.status == 200
    assert adapter.requests.count(("POST", "/api/v1/auth/refresh-token")) == 1


def test_refused_refresh_signs_in_again():
    """A refused refresh token (4xx) means signing in again [C1]."""
    session, state, adapter = offline_session("hardened")
    client = SmarterMailClient(settings(), FIELDMAP, session=session)
    client.login()
    state.tokens.clear()
    assert client.call(FIELDMAP.endpoints["antispam"]).status == 200
    assert adapter.requests.count(("POST", "/api/v1/auth/authenticate-user")) == 2


def test_step_tokens_are_refused_by_real_endpoints():
    """The simulator rejects a two-factor step token on every real endpoint (401)."""
    session, _state, _ = offline_session("hardened")
    response = session.post(f"{OFFLINE_URL}/api/v1/auth/authenticate-user",
                            json={"username": "mfa-admin", "password": LAB_PASSWORD})
    body = response.json()
    assert body["success"] is True and body["message"].startswith("TWO_FACTOR_REQUIRED|")
    denied = session.get(f"{OFFLINE_URL}/api/v1/settings/sysadmin/domains",
                         headers={"Authorization": f"Bearer {body['accessToken']}"})
    assert denied.status_code == 401


# --- faults: errors, never passes ---------------------------------------------------------------

def _with_fault(mode: str, match: str, **kwargs):
    from selftests.unit.api_simulator import smsim
    session, state, adapter = offline_session("hardened")
    state.fault = smsim().Fault(mode, match=match, **kwargs)
    snap = take_snapshot(settings(), FIELDMAP, "mail.sim.test", session=session, sleep=lambda s: None)
    return snap, adapter


@pytest.mark.parametrize("mode", ["error500", "ratelimit", "malformed"])
def test_endpoint_faults_make_its_requirements_errors(mode):
    """A 5xx/429 after retries, or malformed JSON, on one endpoint raises ApiError for its fields."""
    snap, adapter = _with_fault(mode, "/api/v1/settings/sysadmin/protocol-settings")
    with pytest.raises(ApiError) as info:
        evaluate_relay(snap, POLICY)
    assert "protocol-settings" in str(info.value)
    assert snap.read("spf_spool_filtering").ok            # other endpoints are unaffected
    if mode != "malformed":
        assert adapter.requests.count(("GET", "/api/v1/settings/sysadmin/protocol-settings")) == 3


def test_transient_500_is_retried_then_succeeds():
    """One 500 is retried with backoff; the second attempt's answer is used."""
    snap, adapter = _with_fault("flaky500", "/api/v1/settings/sysadmin/protocol-settings", times=1)
    assert snap.read("smtp_allow_relay").ok
    assert adapter.requests.count(("GET", "/api/v1/settings/sysadmin/protocol-settings")) == 2


def test_client_errors_are_not_retried():
    """Only 5xx and 429 are retried: a 403 is asked once."""
    snap, adapter = _with_fault("forbidden", "/api/v1/settings/sysadmin/antispam-settings")
    assert adapter.requests.count(("GET", "/api/v1/settings/sysadmin/antispam-settings")) == 1
    with pytest.raises(ApiError, match="403"):
        snap.read("dmarc_enabled")


def test_a_404_endpoint_is_unreadable_not_an_error():
    """A 404 endpoint (the build lacks it) makes its readings MISSING, for a skip."""
    snap, _ = _with_fault("notfound", "/api/v1/settings/sysadmin/protocol-settings")
    reading = snap.read("smtp_allow_relay")
    assert reading.state is ReadState.MISSING
    assert "Settings > Protocols > SMTP In > Allow Relay" in reading.why_unreadable()


def test_slow_login_is_one_timeout_line():
    """A server that does not answer in time is one ApiError line."""
    with pytest.raises(ApiError, match="no answer within"):
        _with_fault("slow", "/api/v1/auth/*")


# --- over real HTTPS --------------------------------------------------------------------------

def test_tls_is_verified_by_default(tmp_path):
    """Without the CA the certificate is refused (one line); with --ca-file it is accepted."""
    with running_sim("hardened", tmp_path) as sim:
        with pytest.raises(ApiError, match="TLS certificate not accepted"):
            take_snapshot(ApiSettings(sim.url, LAB_USER, LAB_PASSWORD), FIELDMAP, "sim")
        snap = take_snapshot(ApiSettings(sim.url, LAB_USER, LAB_PASSWORD, verify=str(sim.tls.ca)), FIELDMAP, "sim")
        assert snap.tls_verified and snap.read("version").value == "100.0.9550"


def test_insecure_mode_is_explicit_and_recorded(tmp_path):
    """--api-insecure turns verification off, and the snapshot (evidence) says so."""
    with running_sim("hardened", tmp_path) as sim:
        snap = take_snapshot(ApiSettings(sim.url, LAB_USER, LAB_PASSWORD, verify=False), FIELDMAP, "sim")
    assert snap.tls_verified is False
    assert "NOT verified" in evaluate_relay(snap, POLICY).evidence


def test_pinned_address_verifies_the_url_host(tmp_path):
    """Dialling an IP for a host name keeps SNI and certificate checks on the name."""
    with running_sim("hardened", tmp_path) as sim:
        port = sim.url.rsplit(":", 1)[1]
        good = ApiSettings(f"https://localhost:{port}", LAB_USER, LAB_PASSWORD, verify=str(sim.tls.ca),
                           connect_ip="127.0.0.1")
        assert take_snapshot(good, FIELDMAP, "sim").read("version").ok
        wrong = ApiSettings(f"https://mail.other.test:{port}", LAB_USER, LAB_PASSWORD,
                            verify=str(sim.tls.ca), connect_ip="127.0.0.1")
        with pytest.raises(ApiError, match="TLS certificate not accepted"):
            take_snapshot(wrong, FIELDMAP, "sim")


def test_read_timeout_over_https(tmp_path):
    """A slow reply over a real socket hits the client's timeout: an error line, no hang."""
    with running_sim("hardened", tmp_path) as sim:
        sim.set_fault("slow", match="/api/v1/auth/*", delay=3)
        with pytest.raises(ApiError, match="no answer within 1 s"):
            take_snapshot(ApiSettings(sim.url, LAB_USER, LAB_PASSWORD, verify=str(sim.tls.ca), timeout_s=1),
                          FIELDMAP, "sim")


def test_secrets_never_reach_messages_logs_or_evidence(tmp_path):
    """Neither the password nor any token appears in evidence, error lines or the simulator log."""
    with running_sim("hardened", tmp_path) as sim:
        ok = ApiSettings(sim.url, LAB_USER, LAB_PASSWORD, verify=str(sim.tls.ca))
        snap = take_snapshot(ok, FIELDMAP, "sim")
        issued = [t.value for t in sim.state.tokens.values()]
        with pytest.raises(ApiError) as info:
            take_snapshot(ApiSettings(sim.url, "mfa-admin", LAB_PASSWORD, verify=str(sim.tls.ca)), FIELDMAP, "sim")
        texts = [str(info.value), sim.log.read_text(), repr(snap), repr(ok)]
        for key in FIELDMAP.fields:
            endpoint = FIELDMAP.endpoint_of(key)
            for domain in (snap.domains if endpoint.per_domain else (None,)):
                texts.append(snap.read(key, domain).evidence())
    blob = "\n".join(texts)
    assert LAB_PASSWORD not in blob
    assert "eyJ" not in blob                                   # no JWT-shaped token at all
    assert not any(token in blob for token in issued)
