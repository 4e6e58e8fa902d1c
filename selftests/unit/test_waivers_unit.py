"""Offline tests of waivers: what they cover, when they lapse, and clear errors for bad files."""

import datetime as dt

import pytest

from mailaudit.errors import ConfigError
from mailaudit.waivers import Waiver, load_waivers

TODAY = dt.date(2026, 11, 27)


def test_waiver_covers_matching_verdicts_until_it_expires():
    """A waiver covers its requirement on matching servers and variants, up to and including its date."""
    waiver = Waiver("TLS-NO-LEGACY-TLS", "appliance", dt.date(2026, 12, 31), server="mail.*", variant="993-*")
    assert waiver.covers("TLS-NO-LEGACY-TLS", "mail.example.com", "993-TLSv1.0", TODAY)
    assert waiver.covers("TLS-NO-LEGACY-TLS", "mail.example.com", "993-TLSv1.0", dt.date(2026, 12, 31))
    assert not waiver.covers("TLS-NO-LEGACY-TLS", "mail.example.com", "993-TLSv1.0", dt.date(2027, 1, 1))
    assert not waiver.covers("TLS-NO-LEGACY-TLS", "mail.example.com", "25-TLSv1.0", TODAY)
    assert not waiver.covers("TLS-NO-SSL", "mail.example.com", "993-TLSv1.0", TODAY)
    assert not waiver.covers("TLS-NO-LEGACY-TLS", "mx.example.com", "993-TLSv1.0", TODAY)


@pytest.mark.parametrize(("text", "expected"), [
    ("- requirement: X\n  reason: r\n", "'expires' is required"),
    ("- requirement: X\n  reason: r\n  expires: soon\n", "'expires' must be a date"),
    ("- requirement: X\n  reason: r\n  expires: 2027-01-01\n  colour: red\n", "unknown key 'colour'"),
    ("requirement: X\n", "expected a list"),
    ("- [unclosed\n", "unreadable"),
])
def test_bad_waiver_files_are_one_clear_error(tmp_path, text, expected):
    """A malformed waiver file names the entry and the problem."""
    path = tmp_path / "waivers.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_waivers(path)
    assert expected in str(info.value)
