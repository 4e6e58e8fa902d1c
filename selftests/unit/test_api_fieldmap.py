"""The SmarterMail field map: provenance on every entry, the UNKNOWN items assumed, normalising."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mailaudit.errors import ConfigError
from mailaudit.fieldmap import FIELDMAP_FILE, FieldSpec, ReadState, load_fieldmap, normalise, read_value

# The items smartermail-api.md lists as UNKNOWN: the map must hold them as *assumed*.
UNKNOWN_ITEMS = (
    "smtp_allow_relay", "smtp_require_auth_match", "smtp_local_delivery_auth",
    "tls_ssl3_enabled", "tls_tls10_enabled", "tls_tls11_enabled", "tls_tls12_enabled", "tls_tls13_enabled",
    "ids_rules", "system_events", "spf_check_enabled", "spf_spool_filtering", "dmarc_enabled",
    "outgoing_spam_check", "av_clamav_enabled", "av_defender_enabled", "defaults_require_smtp_auth",
    "autoresponder_restriction", "bounce_restriction",
)


def test_every_entry_names_status_source_and_manual_place():
    """Every endpoint and field is marked seen or assumed, cites a source, and fields name a UI place."""
    fieldmap = load_fieldmap()
    for endpoint in fieldmap.endpoints.values():
        assert endpoint.status in ("seen", "assumed") and endpoint.source.strip()
    for spec in fieldmap.fields.values():
        assert spec.status in ("seen", "assumed") and spec.source.strip()
        assert ">" in spec.ui or spec.ui.startswith(("Troubleshooting", "Domains", "Help"))


@pytest.mark.parametrize("key", UNKNOWN_ITEMS)
def test_unknown_items_are_assumed(key):
    """What the API document says is UNKNOWN is held as an assumed entry (field or endpoint)."""
    fieldmap = load_fieldmap()
    spec = fieldmap.fields[key]
    assert spec.status == "assumed" or fieldmap.endpoints[spec.endpoint].status == "assumed"


def test_seen_entries_cite_bracketed_tags():
    """A seen entry cites a source tag of smartermail-api.md such as [C4] or [W1]."""
    fieldmap = load_fieldmap()
    for spec in fieldmap.fields.values():
        if spec.status == "seen":
            assert "[" in spec.source and "]" in spec.source, spec.key


def _write(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load(FIELDMAP_FILE.read_text(encoding="utf-8"))
    mutate(raw)
    path = tmp_path / "map.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_site_can_override_an_assumed_path(tmp_path):
    """A site edits a copy of the map to fix an assumed endpoint for its build."""
    def mutate(raw):
        raw["endpoints"]["protocol_settings"]["path"] = "/api/v1/settings/sysadmin/smtp-in"
    fieldmap = load_fieldmap(_write(tmp_path, mutate))
    assert fieldmap.endpoints["protocol_settings"].path == "/api/v1/settings/sysadmin/smtp-in"


@pytest.mark.parametrize("mutate, expected", [
    (lambda raw: raw["fields"]["smtp_allow_relay"].pop("status"), "smtp_allow_relay.status"),
    (lambda raw: raw["fields"]["version"].update(source=""), "version.source"),
    (lambda raw: raw["fields"]["version"].update(endpoint="nope"), "version.endpoint"),
    (lambda raw: raw["fields"]["version"].pop("ui"), "version.ui"),
    (lambda raw: raw["fields"]["smtp_allow_relay"].pop("values"), "needs values"),
    (lambda raw: raw["endpoints"]["about"].update(scope="everyone"), "about.scope"),
    (lambda raw: raw["auth"]["fields"].pop("access_token"), "access_token"),
])
def test_a_bad_map_is_one_clear_config_error(tmp_path, mutate, expected):
    """A broken field map is a ConfigError naming the entry, not a traceback later."""
    with pytest.raises(ConfigError, match=expected.replace(".", r"\.")):
        load_fieldmap(_write(tmp_path, mutate))


def test_unreadable_file_is_a_config_error(tmp_path):
    """A missing or malformed map file is one line."""
    with pytest.raises(ConfigError, match="cannot read"):
        load_fieldmap(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("fields: [", encoding="utf-8")
    with pytest.raises(ConfigError, match="malformed YAML"):
        load_fieldmap(bad)


RELAY = FieldSpec("relay", "a", "enum", values={"nobody": (0, "Nobody"), "anyone": (3, "Anyone")})


@pytest.mark.parametrize("raw, expected", [(0, "nobody"), ("Nobody", "nobody"), ("nobody", "nobody"),
                                           (3, "anyone"), ("ANYONE", "anyone")])
def test_enums_accept_numbers_and_names(raw, expected):
    """Enums may arrive as a number or a name [C1]; both map to the canonical value."""
    assert normalise(RELAY, raw) == expected


@pytest.mark.parametrize("raw", [7, "Sometimes", True, None])
def test_unknown_enum_value_is_refused(raw):
    """A value the map does not know is not guessed."""
    with pytest.raises(ValueError):
        normalise(RELAY, raw)


def test_types_normalise_as_the_sources_show_them():
    """Booleans may be "True" strings [C6]; rules are {enabled, ruleValue} [C1]; 0 when off."""
    assert normalise(FieldSpec("b", "b", "bool"), "True") is True
    assert normalise(FieldSpec("r", "r", "rule"), {"enabled": True, "ruleValue": 12}) == 12
    assert normalise(FieldSpec("r", "r", "rule"), {"enabled": False, "ruleValue": 12}) == 0
    assert normalise(FieldSpec("m", "m", "intmap"), {"spool": "3", "waiting": 1}) == {"spool": 3, "waiting": 1}
    with pytest.raises(ValueError):
        normalise(FieldSpec("i", "i", "int"), "many")


def test_missing_field_and_fallback():
    """A missing field is ABSENT (skip later); the fallback path is used when the first is absent."""
    spec = FieldSpec("pw", "overrides.minLength", "rule", fallback="defaults.minLength")
    body = {"overrides": {}, "defaults": {"minLength": {"enabled": True, "ruleValue": 10}}}
    reading = read_value(spec, body, {"key": "pw"})
    assert reading.ok and reading.value == 10 and reading.json == "defaults.minLength"
    absent = read_value(FieldSpec("x", "a.b", "bool"), {"a": {}}, {"key": "x"})
    assert absent.state is ReadState.ABSENT and "a.b" in absent.detail
