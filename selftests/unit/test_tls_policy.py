"""Offline tests of the policy's tls section: ports with their STARTTLS protocol, thresholds, validation."""

from pathlib import Path

import pytest

from mailaudit.errors import ConfigError
from mailaudit.policy import load_policy

REPO = Path(__file__).resolve().parents[2]


def test_baseline_tls_ports_and_thresholds():
    """The eight service ports with their STARTTLS protocol, the 21-day window, 2048/256-bit keys."""
    tls = load_policy(REPO / "policies" / "baseline.yaml").tls
    assert {p.port: p.starttls for p in tls.ports} == {
        25: "smtp", 587: "smtp", 465: None, 143: "imap", 993: None, 110: "pop3", 995: None, 443: None}
    assert tls.expiry_warning_days == 21 and tls.min_rsa_key_bits == 2048 and tls.min_ec_key_bits == 256
    assert "NULL" in tls.forbidden_suite_classes and tls.tls13_missing_fails


def test_every_tls_value_cites_a_source():
    """Every leaf of the tls section (baseline and strict) has a source."""
    for name in ("baseline", "strict"):
        policy = load_policy(REPO / "policies" / f"{name}.yaml")
        keys = [k for k in policy.sources if k.startswith("tls.")]
        assert len(keys) >= 13 and all(policy.sources[k] for k in keys)


def test_strict_tightens_tls():
    """strict asks for RSA 3072, a 30-day window and forward secrecy on every pre-1.3 version."""
    strict = load_policy(REPO / "policies" / "strict.yaml").tls
    assert strict.min_rsa_key_bits == 3072 and strict.expiry_warning_days == 30
    assert "TLSv1.0" in strict.forward_secrecy_versions


def test_unlisted_port_is_implicit_tls():
    """A --tls-ports entry the policy does not list (e.g. 10465) is scanned as implicit TLS."""
    tls = load_policy(REPO / "policies" / "baseline.yaml").tls
    assert tls.port_entry(10465).starttls is None and tls.port_entry(143).starttls == "imap"


@pytest.mark.parametrize(("text", "expected"), [
    ('tls:\n  forbidden_suite_classes: {value: ["RC5"], source: x}\n', "unknown class 'RC5'"),
    ("tls:\n  ports: {value: [{port: 25, service: smtp, starttls: xmpp}], source: x}\n", "starttls must be one of"),
    ("tls:\n  ports: {value: [{port: 25, service: a}, {port: 25, service: b}], source: x}\n", "listed twice"),
    ("tls:\n  ports: {value: [{port: 25}], source: x}\n", "lacks 'service'"),
    ("tls:\n  expiry_warning_days: {value: soon, source: x}\n", "'tls.expiry_warning_days' must be int"),
    ("tls:\n  forward_secrecy_versions: {value: [TLSv9], source: x}\n", "unknown version 'TLSv9'"),
])
def test_bad_tls_policy_is_one_clear_error(tmp_path, text, expected):
    """A wrong tls value is a ConfigError naming the key."""
    path = tmp_path / "p.yaml"
    path.write_text(f"extends: {REPO / 'policies' / 'baseline.yaml'}\n{text}")
    with pytest.raises(ConfigError, match=expected):
        load_policy(path)
