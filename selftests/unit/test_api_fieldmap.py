"""The SmarterMail field map: provenance on every entry, the UNKNOWN items assumed, normalising."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mailaudit.errors import ConfigError
from mailaudit.fieldmap import FIELDMAP_FILE, FieldSpec, ReadState, load_fieldmap, normalise, read_value

# The items smartermail-api.md lists as UNKNOWN: the map must hold them as *assumed*.
UNKNOWN_ITEMS = (
    "smtp_allow_relay", "smtp_require_auth_match", "smtp_local_delivery_auth", "smtp_relay_for_authenticated",
    "tls_ssl3_enabled", "tls_tls10_enabled", "tls_tls11_enabled", "tls_tls12_enabled", "tls_tls13_enabled",
    "ids_rules", "system_events", "spf_spool_filtering", "spf_smtp_in_enabled", "dmarc_enabled",
    "outgoing_block_enabled", "outgoing_block_threshold", "outgoing_quarantine_days", "smtp_block_enabled",
    "smtp_block_threshold", "spam_skip_whitelisted", "catchall_system_responses",
    "av_clamav_enabled", "av_clamav_enabled_antispam", "av_defender_enabled", "av_defender_scan_messages",
    "av_defender_scan_messages_without_attachments", "av_defender_scan_files", "defaults_require_smtp_auth",
    "autoresponder_restriction", "bounce_restriction", "smtp_auth_bypass",
)
# Value sets no source gives numbers for: a number from them is never trusted.
ASSUMED_VALUE_SETS = ("smtp_allow_relay", "smtp_require_auth_match", "autoresponder_restriction",
                      "bounce_restriction", "domain_throttle_messages_action", "domain_throttle_bandwidth_action",
                      "ids_rules", "system_events")


def test_every_entry_names_status_source_and_manual_place():
    """Every endpoint and field is marked seen or assumed, cites a source, and fields name a UI place."""
    fieldmap = load_fieldmap()
    for endpoint in fieldmap.endpoints.values():
        assert endpoint.status in ("seen", "assumed") and endpoint.source.strip()
    for spec in fieldmap.fields.values():
        assert spec.status in ("seen", "assumed") and spec.source.strip()
        assert ">" in spec.ui or spec.ui.startswith(("Troubleshooting", "Domains", "Help"))


@pytest.mark.parametrize("key", ASSUMED_VALUE_SETS)
def test_unknown_value_sets_are_assumed(key):
    """The enums whose numbers no source gives have an assumed value set."""
    assert load_fieldmap().fields[key].effective_values_status == "assumed"


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
    spec = FieldSpec("pw", "overrides.minLength", "rule", alternatives=("defaults.minLength",))
    body = {"overrides": {}, "defaults": {"minLength": {"enabled": True, "ruleValue": 10}}}
    reading = read_value(spec, body, {"key": "pw"})
    assert reading.ok and reading.value == 10 and reading.json == "defaults.minLength"
    absent = read_value(FieldSpec("x", "a.b", "bool"), {"a": {}}, {"key": "x"})
    assert absent.state is ReadState.ABSENT and "a.b" in absent.detail


# --- values whose meaning is only assumed (issue 12) --------------------------------------------

ASSUMED_RELAY = FieldSpec("relay", "a", "enum", status="assumed", values_status="assumed",
                          values={"nobody": (0, "Nobody"), "local_domains": (2, "OnlyLocalDomains")})


@pytest.mark.parametrize("raw", [0, 2, "2", " 0 ", 2.0])
def test_a_number_from_an_assumed_value_set_is_guessed_not_trusted(raw):
    """A number (or a digit string) from an assumed value set is GUESSED: the map's guess is kept
    for the message, but the reading is not usable for a verdict."""
    reading = read_value(ASSUMED_RELAY, {"a": raw}, {"key": "relay", "manual": "Settings > SMTP In"})
    assert reading.state is ReadState.GUESSED and not reading.ok and reading.present
    assert reading.value in ("nobody", "local_domains")
    text = reading.why_unreadable()
    assert repr(raw) in text or str(raw) in text
    assert "guesses" in text and "Settings > SMTP In" in text and "values_status: confirmed" in text


@pytest.mark.parametrize("status", ["confirmed", "seen"])
def test_a_confirmed_or_seen_value_set_trusts_numbers(status):
    """Once a site marks the value set confirmed (or a source gives the numbers), numbers are read."""
    spec = FieldSpec("relay", "a", "enum", values_status=status, values=ASSUMED_RELAY.values)
    reading = read_value(spec, {"a": 2}, {"key": "relay"})
    assert reading.ok and reading.value == "local_domains"


@pytest.mark.parametrize("raw", ["OnlyLocalDomains", "only_local_domains", "Only Local Domains",
                                 "ONLY-LOCAL-DOMAINS", " onlylocaldomains "])
def test_string_enums_match_case_space_and_separator_insensitively(raw):
    """Names match whatever their case, spaces or separators; a name is trusted (its meaning is
    in its text), even from an assumed value set."""
    reading = read_value(ASSUMED_RELAY, {"a": raw}, {"key": "relay"})
    assert reading.ok and reading.value == "local_domains"


def test_a_list_with_a_numeric_assumed_enum_is_guessed():
    """IDS rules whose type arrives as a number cannot be told apart: the whole list is GUESSED."""
    spec = load_fieldmap().fields["ids_rules"]
    rule = {"type": 5, "serviceType": 0, "enabled": True, "threshold": 5, "timeFrameMinutes": 10,
            "blockTimeMinutes": 60, "description": "x"}
    reading = read_value(spec, {"rules": [rule]}, {"key": "ids_rules"})
    assert reading.state is ReadState.GUESSED and "type = 5 -> internal_spammer" in reading.guesses[0]
    named = read_value(spec, {"rules": [{**rule, "type": "internal_spammer"}]}, {"key": "ids_rules"})
    assert named.ok


def test_seen_numbers_stay_trusted():
    """postingPermissions numbers are given by sources [C1][C4]: 0 = anyone is read as such."""
    spec = load_fieldmap().fields["mailing_lists"]
    reading = read_value(spec, {"items": [{"listAddress": "a@b", "postingPermissions": 0}]}, {"key": "l"})
    assert reading.ok and reading.value[0]["posting"] == "anyone"


def test_basis_names_assumed_entries_or_says_seen_or_confirmed():
    """A verdict's basis: 'seen', 'confirmed', or 'assumed: <entries>'."""
    from mailaudit.fieldmap import Reading, basis_of
    seen = Reading("version", ReadState.OK, status="seen", endpoint="about", endpoint_status="seen")
    confirmed = Reading("x", ReadState.OK, status="confirmed", endpoint="e", endpoint_status="seen")
    assumed = Reading("relay", ReadState.OK, status="assumed", endpoint="smtp_in", endpoint_status="assumed",
                      values_status="assumed")
    assert basis_of([seen]) == "seen"
    assert basis_of([seen, confirmed]) == "confirmed"
    assert basis_of([seen, confirmed, assumed]) == "assumed: endpoint smtp_in, field relay, values of relay"


def test_the_map_accepts_confirmed_and_alternative_paths(tmp_path):
    """A site map may mark entries confirmed and give a field several spellings."""
    def mutate(raw):
        raw["fields"]["smtp_allow_relay"].update(status="confirmed", values_status="confirmed")
        raw["fields"]["dmarc_enabled"]["json"] = ["settings.spam_enable_dmarc_policy", "antiSpamSettings.x"]
    fieldmap = load_fieldmap(_write(tmp_path, mutate))
    assert fieldmap.fields["smtp_allow_relay"].effective_values_status == "confirmed"
    assert fieldmap.fields["dmarc_enabled"].paths == ("settings.spam_enable_dmarc_policy", "antiSpamSettings.x")
    assert "values of smtp_allow_relay" not in fieldmap.assumed()


@pytest.mark.parametrize("mutate, expected", [
    (lambda raw: raw["endpoints"]["ids_rules"].update(method="POST", body={"rules": []}), "only list queries"),
    (lambda raw: raw["endpoints"]["ids_rules"].update(method="POST"), "only list queries"),
    (lambda raw: raw["endpoints"]["system_events"].update(path="/api/v1/settings/sysadmin/event-hook-delete"),
     "looks like a write"),
    (lambda raw: raw["endpoints"]["antivirus"].update(
        method="POST", body={"count": 1}, path="/api/v1/settings/sysadmin/antivirus/settings-set"),
     "looks like a write"),
    (lambda raw: raw["fields"]["domain_two_factor"].update(values={True: ["1"]}), "must be strings"),
    (lambda raw: raw["fields"]["version"].update(status="checked"), "seen, confirmed, assumed"),
])
def test_the_map_refuses_writes_and_slips(tmp_path, mutate, expected):
    """A POST outside auth must be a paged list query to a non-write path; enum names are strings."""
    with pytest.raises(ConfigError, match=expected):
        load_fieldmap(_write(tmp_path, mutate))


def test_yaml_anchors_are_refused(tmp_path):
    """A map with anchors (a billion-laughs blow-up) is refused before YAML expands it."""
    bad = tmp_path / "bomb.yaml"
    bad.write_text('a: &a ["x", "x"]\nb: &b [*a, *a]\nauth: {}\nendpoints: {}\nfields: {}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="anchors"):
        load_fieldmap(bad)


def test_a_list_without_sub_fields_keeps_items_whole():
    """The SMTP auth bypass list is counted whatever its items' keys are [E8]."""
    spec = load_fieldmap().fields["smtp_auth_bypass"]
    body = {"items": [{"ipRange": "10.0.0.1-10.0.0.9"}, {"address": "192.0.2.1", "description": "x"}]}
    reading = read_value(spec, body, {"key": "smtp_auth_bypass"})
    assert reading.ok and len(reading.value) == 2 and reading.value[0] == {"ipRange": "10.0.0.1-10.0.0.9"}
