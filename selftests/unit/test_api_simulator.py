"""The lab's SmarterMail API simulator shows the documented quirks (smartermail-api.md), over HTTPS."""

from __future__ import annotations

import json
import time

import pytest
import requests

from mailaudit.fieldmap import load_fieldmap
from selftests.unit.api_simulator import LAB_PASSWORD, LAB_USER, running_sim, smsim

LOGIN = "/api/v1/auth/authenticate-user"


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """A hardened simulator on a free loopback port (module-wide)."""
    with running_sim("hardened", tmp_path_factory.mktemp("sim")) as running:
        yield running


@pytest.fixture
def http(sim):
    """A requests session trusting the simulator's throwaway CA, faults off."""
    sim.set_fault(None)
    session = requests.Session()
    session.verify = str(sim.tls.ca)
    session.trust_env = False        # REQUESTS_CA_BUNDLE would override session.verify
    yield session
    sim.set_fault(None)


def login(http, sim, user=LAB_USER, password=LAB_PASSWORD, client_id="t1") -> dict:
    """POST authenticate-user and return the JSON body."""
    return http.post(sim.url + LOGIN, json={"username": user, "password": password, "clientId": client_id},
                     timeout=5).json()


def bearer(token: str) -> dict[str, str]:
    """The Authorization header."""
    return {"Authorization": f"Bearer {token}"}


def test_iis_server_header_and_public_about(http, sim):
    """licensing/about answers without a token, behind a Microsoft-IIS/10.0 Server header [W3]."""
    response = http.get(sim.url + "/api/v1/licensing/about", timeout=5)
    assert response.status_code == 200 and response.headers["Server"] == "Microsoft-IIS/10.0"
    assert response.json() == {"version": "100.0.9550", "edition": 0, "enterpriseFunctionality": true_()}


def true_() -> bool:
    """True (kept out of literals so the JSON comparison above reads like the wire)."""
    return True


def test_login_answer_shape(http, sim):
    """The login answer has tokens, expirations, role flags and the envelope [S1][C2][C3]."""
    body = login(http, sim)
    for key in ("accessToken", "refreshToken", "accessTokenExpiration", "refreshTokenExpiration",
                "isAdmin", "isDomainAdmin", "changePasswordNeeded", "success", "resultCode"):
        assert key in body
    assert body["isAdmin"] is True and body["accessToken"].count(".") == 2   # JWT-shaped


def test_wrong_password_is_200_with_success_false(http, sim):
    """On this profile a wrong password is HTTP 200 + success:false [C11] (weak.yaml: 401)."""
    response = http.post(sim.url + LOGIN, json={"username": LAB_USER, "password": "nope"}, timeout=5)
    assert response.status_code == 200
    assert response.json()["success"] is False and response.json()["message"] == "USERNAME_OR_PASSWORD_INCORRECT"


def test_missing_or_expired_token_is_401(http, sim):
    """No token, a garbage token, or an expired token: 401."""
    url = sim.url + "/api/v1/settings/sysadmin/domains"
    assert http.get(url, timeout=5).status_code == 401
    assert http.get(url, headers=bearer("x.y.z"), timeout=5).status_code == 401
    token = login(http, sim, client_id="expiring")["accessToken"]
    sim.state.tokens[token].expires = time.time() - 1
    response = http.get(url, headers=bearer(token), timeout=5)
    assert response.status_code == 401 and response.json()["message"] == "Token has expired"


def test_roles_sysadmin_and_domain_scopes(http, sim):
    """A domain admin gets 403 on sysadmin endpoints; a sysadmin gets 403 on domain endpoints
    until it impersonates with manage-domain [W1][C4]."""
    da = login(http, sim, user="postmaster@hardened.test")["accessToken"]
    assert http.get(sim.url + "/api/v1/settings/sysadmin/domains", headers=bearer(da), timeout=5).status_code == 403
    assert http.get(sim.url + "/api/v1/settings/domain/data", headers=bearer(da), timeout=5).status_code == 200
    sa = login(http, sim)["accessToken"]
    assert http.get(sim.url + "/api/v1/settings/domain/domain", headers=bearer(sa), timeout=5).status_code == 403
    imp = http.post(sim.url + "/api/v1/settings/sysadmin/manage-domain/hardened.test", headers=bearer(sa),
                    json={}, timeout=5).json()
    assert imp["success"] and "impersonateAccessTokenExpiration" in imp
    domain = http.get(sim.url + "/api/v1/settings/domain/domain", headers=bearer(imp["impersonateAccessToken"]),
                      timeout=5).json()
    assert domain["domainSettings"]["requireSmtpAuthentication"] is True


def test_refresh_rotates_and_old_refresh_token_dies(http, sim):
    """refresh-token hands out a new set; reusing the old refresh token is refused [C1]."""
    first = login(http, sim, client_id="rot")
    url = sim.url + "/api/v1/auth/refresh-token"
    second = http.post(url, json={"token": first["refreshToken"], "clientId": "rot"}, timeout=5).json()
    assert second["success"] and second["refreshToken"] != first["refreshToken"]
    again = http.post(url, json={"token": first["refreshToken"], "clientId": "rot"}, timeout=5)
    assert again.status_code == 401 and again.json()["message"] == "Refresh token rejected"
    old_access = http.get(sim.url + "/api/v1/settings/sysadmin/services", headers=bearer(first["accessToken"]),
                          timeout=5)
    assert old_access.status_code == 401


def test_logout_revokes(http, sim):
    """logout-user revokes the (user, clientId) tokens [C1]."""
    token = login(http, sim, client_id="bye")["accessToken"]
    assert http.post(sim.url + "/api/v1/auth/logout-user", headers=bearer(token), json={}, timeout=5).json()["success"]
    assert http.get(sim.url + "/api/v1/settings/sysadmin/services", headers=bearer(token), timeout=5).status_code == 401


def test_unknown_path_is_404_with_empty_body(http, sim):
    """A path the build does not have answers 404 (empty body, as a front end would)."""
    token = login(http, sim)["accessToken"]
    response = http.get(sim.url + "/api/v1/settings/sysadmin/no-such-thing", headers=bearer(token), timeout=5)
    assert response.status_code == 404 and response.content == b""


def test_webmail_page_on_443(http, sim):
    """The root path serves a sign-in page (port 443 is also the webmail port of the TLS checks)."""
    response = http.get(sim.url + "/", timeout=5)
    assert response.status_code == 200 and "stProductBuild" in response.text


def test_every_field_map_endpoint_is_served(http, sim):
    """The simulator serves every endpoint of the field map (the client and the lab agree)."""
    fieldmap = load_fieldmap()
    token = login(http, sim)["accessToken"]
    imp = http.post(sim.url + "/api/v1/settings/sysadmin/manage-domain/hardened.test", headers=bearer(token),
                    json={}, timeout=5).json()["impersonateAccessToken"]
    for endpoint in fieldmap.endpoints.values():
        if endpoint.scope == "login":
            continue                   # the suite's own sign-in answer, not a separate call
        auth = {} if endpoint.scope == "public" else bearer(imp if endpoint.scope == "domain" else token)
        response = http.request(endpoint.method, sim.url + endpoint.path_for("hardened.test"), headers=auth,
                                json=endpoint.body, timeout=5)
        assert response.status_code == 200, endpoint.key


@pytest.mark.parametrize("mode, status", [("error500", 500), ("ratelimit", 429), ("notfound", 404),
                                          ("forbidden", 403), ("malformed", 200)])
def test_fault_switch(http, sim, mode, status):
    """Each fault mode answers as documented, deterministically, only where it matches."""
    token = login(http, sim)["accessToken"]
    sim.set_fault(mode, match="/api/v1/settings/sysadmin/services")
    response = http.get(sim.url + "/api/v1/settings/sysadmin/services", headers=bearer(token), timeout=5)
    assert response.status_code == status
    if mode == "malformed":
        with pytest.raises(ValueError):
            response.json()
    other = http.get(sim.url + "/api/v1/settings/sysadmin/antispam-settings", headers=bearer(token), timeout=5)
    assert other.status_code == 200


def test_fault_file_is_read_per_request(tmp_path):
    """The lab's fault switch is a file: written JSON takes effect on the next request; empty = off."""
    module = smsim()
    fault_file = tmp_path / "weak.fault"
    state = module.make_state(module.load_profile(module.Path(__file__).parents[2] / "lab/smsim/profiles/weak.yaml"),
                              LAB_USER, LAB_PASSWORD, fault_file=fault_file)
    assert module.current_fault(state, "/api/v1/settings/sysadmin/domains") is None
    fault_file.write_text(json.dumps({"mode": "flaky500", "times": 2}))
    hits = [module.current_fault(state, "/api/v1/settings/sysadmin/domains") is not None for _ in range(3)]
    assert hits == [True, True, False]
    fault_file.write_text("")
    assert module.current_fault(state, "/api/v1/settings/sysadmin/domains") is None


def test_password_requirements_are_the_effective_rules(http, sim):
    """password-requirements (domain-admin token) answers the domain's overrides over the server
    defaults, in the reqCapital/reqLength names of [E3]; without a domain token there is none."""
    token = login(http, sim)["accessToken"]
    imp = http.post(sim.url + "/api/v1/settings/sysadmin/manage-domain/hardened.test", headers=bearer(token),
                    json={}, timeout=5).json()["impersonateAccessToken"]
    url = sim.url + "/api/v1/settings/password-requirements"
    body = http.get(url, headers=bearer(imp), timeout=5).json()
    assert body["reqLength"] == 14 and body["reqCapital"] is True and body["reqNotUsername"] is True
    assert http.get(url, headers=bearer(token), timeout=5).status_code == 404


def test_can_view_passwords_comes_from_the_profile():
    """The sign-in answer's canViewPasswords is the profile's (weak: true, hardened: false)."""
    module = smsim()
    root = module.Path(__file__).parents[2] / "lab/smsim/profiles"
    for name, expected in (("hardened", False), ("weak", True)):
        state = module.make_state(module.load_profile(root / f"{name}.yaml"), LAB_USER, LAB_PASSWORD)
        reply = module.authenticate(state, {"username": LAB_USER, "password": LAB_PASSWORD})
        assert reply.body["canViewPasswords"] is expected, name
