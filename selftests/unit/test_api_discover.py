"""`python -m mailaudit.discover` against the three simulator profiles over HTTPS: it reports found
and missing fields correctly, suggests the right names, writes a site field map that (after the
expected manual edits) makes the audit read every field, and leaks no secret (issue 12)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailaudit import discover
from mailaudit.evaluate import api as judge
from mailaudit.fieldmap import FIELDMAP_FILE, ReadState, load_fieldmap
from mailaudit.policy import load_policy
from mailaudit.probes.smartermail import ApiSettings, take_snapshot
from mailaudit.verdict import Outcome
from selftests.unit.api_simulator import LAB_PASSWORD, LAB_USER, ROOT, running_sim

POLICY = load_policy(ROOT / "policies" / "baseline.yaml").api
# What a site finds on its build's /Documentation/api for the variant build's 404 endpoints.
VARIANT_PATHS = {
    "smtp_in_settings": "/api/v1/settings/sysadmin/smtp-in-settings",
    "antispam": "/api/v1/settings/sysadmin/antispam/settings",
    "ids_rules": "/api/v1/settings/sysadmin/ids/rules",
    "domain_defaults": "/api/v1/settings/sysadmin/domain-defaults/settings",
}
# Requirements whose fields the variant build has elsewhere or spells otherwise.
AFFECTED = ("API-RELAY", "API-AUTH-MATCH", "API-LOCAL-DELIVERY-AUTH", "API-DOMAIN-SMTP-AUTH", "API-BOUNCES-SPF",
            "API-OUTBOUND-SPAM", "API-SPF-SPOOL-FILTER", "API-DMARC-CHECK", "API-SPAM-WHITELIST-BYPASS",
            "API-IDS-RULES")
# Fields this build does not have where the map looks, because it keeps the setting elsewhere
# (ClamAV with the antispam settings [E1], Defender as per-scope switches [E9]).
ELSEWHERE = {"av_clamav_enabled", "av_defender_enabled", "av_defender_scan_messages_without_attachments"}
# Requirements resting on a number whose meaning no source gives: inconclusive until confirmed.
NUMERIC = ("API-BOUNCES-SPF", "API-THROTTLING")


def run_discovery(name: str, directory: Path, fieldmap_path: Path | None = None):
    """Discover a simulator of the profile; (findings, report text, out dir, issued tokens)."""
    with running_sim(name, directory / "sim") as sim:
        settings = ApiSettings(sim.url, LAB_USER, LAB_PASSWORD, verify=str(sim.tls.ca))
        fieldmap = load_fieldmap(fieldmap_path)
        findings = discover.discover(settings, fieldmap)
        out = directory / "out"
        text = discover.write(findings, fieldmap, sim.url, out)
        issued = [t.value for t in sim.state.tokens.values()]
    return findings, text, out, issued


def by_key(findings) -> dict[str, Any]:
    """endpoint key -> finding, and field key -> field finding."""
    table: dict[str, Any] = {f.endpoint.key: f for f in findings}
    table.update({item.key: item for f in findings for item in f.fields})
    return table


def audit(name: str, directory: Path, fieldmap_path: Path | None = None):
    """The audit's snapshot of a simulator with a field map."""
    with running_sim(name, directory / "audit-sim") as sim:
        settings = ApiSettings(sim.url, LAB_USER, LAB_PASSWORD, verify=str(sim.tls.ca))
        return take_snapshot(settings, load_fieldmap(fieldmap_path), "sim")


def assert_no_secret(out: Path, text: str, issued: list[str]) -> None:
    """No output of a discovery holds the password or a token."""
    blob = text + "\n".join(p.read_text(encoding="utf-8") for p in out.rglob("*") if p.is_file())
    assert LAB_PASSWORD not in blob and "eyJ" not in blob
    assert not any(token in blob for token in issued)


@pytest.mark.parametrize("name", ["hardened", "weak"])
def test_lab_profiles_have_every_field(tmp_path, name):
    """Against the hardened and weak builds every endpoint answers and every mapped field is found."""
    findings, text, out, issued = run_discovery(name, tmp_path)
    table = by_key(findings)
    assert all(f.answer == "answered" for f in findings), text
    assert all(item.found for f in findings for item in f.fields), text
    assert table["can_view_passwords"].shown == ("true" if name == "weak" else "false")
    assert f"{sum(len(f.fields) for f in findings)} of" in text and "0 endpoint(s) answered 404" in text
    site = load_fieldmap(out / "site-fieldmap.yaml")
    assert site.fields["smtp_allow_relay"].status == "confirmed"
    assert site.fields["smtp_allow_relay"].effective_values_status == "assumed"     # values: a person checks
    assert site.fields["version"].status == "seen"
    assert_no_secret(out, text, issued)


def test_variant_build_differences_are_found(tmp_path):
    """Against the variant build: the moved endpoints answer 404, the SMTP In fields are missing from
    the TLS endpoint, and fields found elsewhere are reported found."""
    findings, text, out, issued = run_discovery("variant", tmp_path)
    table = by_key(findings)
    for key in ("antispam", "ids_rules", "domain_defaults"):
        assert table[key].answer == "404", key
    assert table["smtp_in_settings"].answer == "answered"
    assert table["smtp_allow_relay"].state is ReadState.ABSENT and not table["smtp_allow_relay"].candidates
    assert table["tls_tls10_enabled"].found and table["av_defender_scan_messages"].found
    assert table["domain_auth_blocked_countries"].found          # the [C1] spelling, an alternative path
    assert "MISSING  smtp_allow_relay" in text and "404 (this build lacks the path" in text
    site_text = (out / "site-fieldmap.yaml").read_text()
    assert "# antispam: GET /api/v1/settings/sysadmin/antispam-settings answered 404" in site_text
    assert_no_secret(out, text, issued)


def site_map_for_variant(directory: Path) -> Path:
    """The expected manual edits: the paths from the build's documentation, then a second
    discovery whose name suggestions are taken. Returns the finished site map."""
    _, _, out, _ = run_discovery("variant", directory / "first")
    raw = yaml.safe_load((out / "site-fieldmap.yaml").read_text(encoding="utf-8"))
    for key, path in VARIANT_PATHS.items():
        raw["endpoints"][key]["path"] = path
    edited = directory / "edited.yaml"
    edited.write_text(yaml.safe_dump(raw), encoding="utf-8")
    findings, text, out, _ = run_discovery("variant", directory / "second", edited)
    missing = [item for f in findings for item in f.fields if not item.found]
    exact = {item.key: item.candidates[0][0] for item in missing if item.candidates and item.candidates[0][1] == 1.0}
    assert {item.key for item in missing} - set(exact) == ELSEWHERE, text   # kept elsewhere on this build
    raw = yaml.safe_load((out / "site-fieldmap.yaml").read_text(encoding="utf-8"))
    for key, path in exact.items():             # the same name in another spelling: the site takes it
        raw["fields"][key]["json"] = path
    final = directory / "site.yaml"
    final.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return final


def test_the_site_map_makes_the_audit_read_every_field(tmp_path):
    """With the site map every field of the variant build is read; the requirements pass except
    those resting on a number no source gives a meaning for, which are inconclusive."""
    site = site_map_for_variant(tmp_path)
    snap = audit("variant", tmp_path, site)
    alternatives = ("pw_", "av_defender_enabled", "av_defender_scan_messages_without", "av_clamav_enabled")
    for key, spec in snap.fieldmap.fields.items():
        if key.startswith(alternatives) and key != "av_clamav_enabled_antispam":
            continue                 # fallbacks and alternatives: the effective field is read instead
        endpoint = snap.fieldmap.endpoints[spec.endpoint]
        for domain in (snap.domains if endpoint.per_domain else (None,)):
            reading = snap.read(key, domain)
            assert reading.present, reading.why_unreadable()
    for requirement, evaluate in judge.EVALUATORS.items():
        evaluation = evaluate(snap, POLICY)
        expected = Outcome.INCONCLUSIVE if requirement in NUMERIC else Outcome.PASSED
        assert evaluation.outcome is expected, (requirement, evaluation.message)


def test_confirming_the_numbers_lets_them_decide(tmp_path):
    """Once the site confirms the value sets on its build, the numeric fields decide too."""
    site = site_map_for_variant(tmp_path)
    raw = yaml.safe_load(site.read_text(encoding="utf-8"))
    for key in ("autoresponder_restriction", "bounce_restriction", "domain_throttle_messages_action",
                "domain_throttle_bandwidth_action"):
        raw["fields"][key]["values_status"] = "confirmed"
    site.write_text(yaml.safe_dump(raw), encoding="utf-8")
    snap = audit("variant", tmp_path, site)
    for requirement in NUMERIC:
        evaluation = judge.EVALUATORS[requirement](snap, POLICY)
        assert evaluation.passed, (requirement, evaluation.message)
        assert "values of" not in evaluation.basis, evaluation.basis


def test_without_the_site_map_affected_requirements_never_pass(tmp_path):
    """Audited with the packaged map, the variant build's affected requirements are skipped or
    inconclusive, never passed (a guessed number never passes)."""
    snap = audit("variant", tmp_path)
    for requirement in (*AFFECTED, *NUMERIC):
        evaluation = judge.EVALUATORS[requirement](snap, POLICY)
        assert evaluation.outcome in (Outcome.SKIPPED, Outcome.INCONCLUSIVE), (requirement, evaluation.message)


# --- offline pieces -----------------------------------------------------------------------------

def test_scrub_replaces_secret_looking_values():
    """Values under secret-named keys, JWTs, long keys and license numbers are replaced; shapes
    and harmless values stay."""
    body = {"password": "hunter2", "requirePassword": False, "dkimPrivateKey": "abc", "keySize": 2048,
            "passwordSettings": {"minLength": {"enabled": True, "ruleValue": 12}},
            "licenseKey": "ABCDE-12345-FGHIJ-67890", "note": "ABCDE-12345-FGHIJ-67890",
            "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXZhbHVl", "name": "example.test",
            "items": [{"token": "t-1"}, {"value": "plain"}]}
    scrubbed = discover.scrub(body)
    assert scrubbed["password"] == scrubbed["dkimPrivateKey"] == scrubbed["licenseKey"] == "[redacted]"
    assert scrubbed["note"] == scrubbed["jwt"] == scrubbed["items"][0]["token"] == "[redacted]"
    assert scrubbed["requirePassword"] is False and scrubbed["keySize"] == 2048
    assert scrubbed["passwordSettings"]["minLength"]["ruleValue"] == 12 and scrubbed["name"] == "example.test"
    assert scrubbed["items"][1] == {"value": "plain"}


def test_candidates_ignore_case_and_separators():
    """A missing camelCase field finds its snake_case twin first."""
    spec = load_fieldmap().fields["dmarc_enabled"]
    body = {"settings": {"spam_enable_dmarc_policy": True, "spam_enable_dkim": True, "other": 1}}
    found = discover.candidates(spec, body)
    assert found[0] == ("settings.spam_enable_dmarc_policy", 1.0)


def test_command_line_refuses_bad_input(tmp_path, monkeypatch, capsys):
    """No credentials, an http:// URL or a missing CA file: one line, exit 2, nothing contacted."""
    monkeypatch.delenv("MAILAUDIT_API_USER", raising=False)
    assert discover.main(["--api-url", "https://x.test", "--out", str(tmp_path)]) == 2
    monkeypatch.setenv("MAILAUDIT_API_USER", "u")
    monkeypatch.setenv("MAILAUDIT_API_PASSWORD", "p-secret-77")
    assert discover.main(["--api-url", "http://x.test", "--out", str(tmp_path)]) == 2
    assert discover.main(["--api-url", "https://x.test", "--ca-file", str(tmp_path / "no.pem")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 3 and "p-secret-77" not in err


def test_command_line_against_the_simulator(tmp_path, monkeypatch, capsys):
    """The command prints the report and writes the three outputs."""
    with running_sim("hardened", tmp_path / "sim") as sim:
        monkeypatch.setenv("MAILAUDIT_API_USER", LAB_USER)
        monkeypatch.setenv("MAILAUDIT_API_PASSWORD", LAB_PASSWORD)
        code = discover.main(["--api-url", sim.url, "--ca-file", str(sim.tls.ca), "--out", str(tmp_path / "o")])
    printed = capsys.readouterr().out
    assert code == 0 and "endpoint antispam" in printed and LAB_PASSWORD not in printed
    assert (tmp_path / "o" / "site-fieldmap.yaml").is_file() and (tmp_path / "o" / "discovery.txt").is_file()
    body = json.loads((tmp_path / "o" / "responses" / "antivirus.json").read_text())
    assert body["settings"]["clamAvEnabled"] is True
    assert copy.deepcopy(body) == body and FIELDMAP_FILE.is_file()
