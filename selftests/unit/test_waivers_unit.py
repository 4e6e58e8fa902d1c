"""Offline tests of waivers: what they cover, when they lapse, clear errors for bad files (checked
before any probe), bounded loading, and the after-run review of expired and unused waivers."""

import datetime as dt
import time
import tracemalloc
from pathlib import Path

import pytest

from mailaudit.catalog import load_catalog
from mailaudit.errors import ConfigError
from mailaudit.waivers import Waiver, load_waivers, review_waivers

TODAY = dt.date(2026, 11, 27)
ENTRY = "- requirement: TLS-NO-LEGACY-TLS\n  reason: appliance\n  expires: 2027-03-31\n"


def test_waiver_covers_matching_verdicts_until_it_expires():
    """A waiver covers its requirement on matching servers and variants, up to and including its date."""
    waiver = Waiver("TLS-NO-LEGACY-TLS", "appliance", dt.date(2026, 12, 31), server="mail.*", variant="993-*")
    assert waiver.covers("TLS-NO-LEGACY-TLS", "mail.example.com", "993-TLSv1.0", TODAY)
    assert waiver.covers("TLS-NO-LEGACY-TLS", "mail.example.com", "993-TLSv1.0", dt.date(2026, 12, 31))
    assert not waiver.covers("TLS-NO-LEGACY-TLS", "mail.example.com", "993-TLSv1.0", dt.date(2027, 1, 1))
    assert not waiver.covers("TLS-NO-LEGACY-TLS", "mail.example.com", "25-TLSv1.0", TODAY)
    assert not waiver.covers("TLS-NO-SSL", "mail.example.com", "993-TLSv1.0", TODAY)
    assert not waiver.covers("TLS-NO-LEGACY-TLS", "mx.example.com", "993-TLSv1.0", TODAY)
    assert waiver.covers("TLS-NO-LEGACY-TLS", "MAIL.Example.com", "993-TLSv1.0", TODAY)


def _load(tmp_path: Path, text: str) -> tuple[Waiver, ...]:
    """Write ``text`` to a waivers file and load it against the real catalog."""
    path = tmp_path / "waivers.yaml"
    path.write_text(text, encoding="utf-8")
    return load_waivers(path)


def test_a_valid_file_loads(tmp_path):
    """A well-formed entry, with a numeric variant and a glob server, loads as a Waiver."""
    waivers = _load(tmp_path, ENTRY + '  server: "mail.*"\n  variant: 993\n')
    assert waivers == (Waiver("TLS-NO-LEGACY-TLS", "appliance", dt.date(2027, 3, 31), "mail.*", "993"),)


@pytest.mark.parametrize(("text", "expected"), [
    ("- requirement: X\n  reason: r\n  expires: 2027-03-31\n", "unknown requirement 'X'"),
    ("- requirement: TLS-NO-LEGACY-TLS\n  reason: r\n", "'expires' is required"),
    ("- requirement: TLS-NO-LEGACY-TLS\n  reason: r\n  expires: soon\n", "'expires' must be a date"),
    ("- requirement: TLS-NO-LEGACY-TLS\n  reason: r\n  expires: 2027-03-31 10:00:00\n",
     "'expires' must be a date (YYYY-MM-DD), not a date and time"),
    ("- requirement: TLS-NO-LEGACY-TLS\n  reason: r\n  expires: 2027-02-30\n", "invalid value near line 3"),
    (ENTRY + "  colour: red\n", "unknown key 'colour'"),
    (ENTRY + "  7: red\n", "unknown key '7'"),
    ("- requirement: tls-no-legacy-tls\n  reason: r\n  expires: 2027-03-31\n",
     "unknown requirement 'tls-no-legacy-tls'; IDs are case-sensitive: did you mean TLS-NO-LEGACY-TLS?"),
    ("- requirement: TLS-NO-SUCH-THING\n  reason: r\n  expires: 2027-03-31\n",
     "unknown requirement 'TLS-NO-SUCH-THING' (not in the catalog)"),
    ("- requirement: [TLS-NO-LEGACY-TLS]\n  reason: r\n  expires: 2027-03-31\n", "must be a requirement ID"),
    ("- requirement: TLS-NO-LEGACY-TLS\n  reason: ''\n  expires: 2027-03-31\n", "'reason' must say why"),
    ("- requirement: TLS-NO-LEGACY-TLS\n  reason: '   '\n  expires: 2027-03-31\n", "'reason' must say why"),
    ("- requirement: TLS-NO-LEGACY-TLS\n  reason: 42\n  expires: 2027-03-31\n", "'reason' must say why"),
    ("- requirement: TLS-NO-LEGACY-TLS\n  reason: r\n  expires: 2027-03-31\n  server: ''\n", "'server' must be a glob"),
    (ENTRY + "  variant: [a]\n", "'variant' must be a glob"),
    (ENTRY + "  reason: again\n", "key 'reason' given twice"),
    ("requirement: X\n", "expected a list"),
    ("- just text\n", "entry 1: expected a mapping"),
    ("- [unclosed\n", "malformed YAML at line"),
])
def test_bad_waiver_files_are_one_clear_error(tmp_path, text, expected):
    """A malformed waiver file names the entry and the problem, in one line, at load time."""
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    assert expected in str(info.value), str(info.value)
    assert "\n" not in str(info.value)


def test_every_catalog_id_is_accepted_exactly(tmp_path):
    """Every ID of the catalog is a valid waiver requirement, spelled exactly."""
    text = "".join(f"- requirement: {req}\n  reason: r\n  expires: 2027-03-31\n" for req in load_catalog())
    assert len(_load(tmp_path, text)) == len(load_catalog())


def test_billion_laughs_waivers_fail_at_once_in_bounded_memory(tmp_path):
    """A 0.4 KB waivers file whose reason expands to 387 million strings is refused at the first
    anchor, in milliseconds and under 5 MB (the old loader reached 5.8 GB in 44 s)."""
    text = ("- requirement: TLS-NO-LEGACY-TLS\n  expires: 2027-03-31\n"
            "  reason: [&a [lol,lol,lol,lol,lol,lol,lol,lol,lol]")
    previous = "a"
    for name in "bcdefghi":
        text += f", &{name} [" + ",".join([f"*{previous}"] * 9) + "]"
        previous = name
    text += "]\n"
    assert len(text) < 1000
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ConfigError, match="anchors and aliases"):
            _load(tmp_path, text)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 1 and peak < 5_000_000, (elapsed, peak)


def test_an_empty_file_is_no_waivers(tmp_path):
    """An empty waivers file (or one with only comments) waives nothing."""
    assert _load(tmp_path, "# none yet\n") == ()


def _record(requirement: str, server: str, variant: str, outcome: str) -> dict[str, str]:
    return {"requirement": requirement, "server": server, "variant": variant, "outcome": outcome}


def test_review_names_expired_waivers_whose_failure_is_back_and_unused_ones():
    """After the run: an expired waiver names each failure that is back; a waiver in force that
    waived nothing is listed as unused (with why); a waiver that waived something is not named."""
    expired = Waiver("TLS-NO-LEGACY-TLS", "appliance", dt.date(2026, 11, 1), server="mail.*")
    used = Waiver("SMTP-VRFY-EXPN", "legacy", dt.date(2027, 1, 1))
    not_needed = Waiver("DNS-SPF-POLICY", "moving", dt.date(2027, 1, 1))
    matches_nothing = Waiver("DNS-DMARC-RECORD", "typo in server", dt.date(2027, 1, 1), server="mx.*")
    expired_quiet = Waiver("SMTP-BANNER-DISCLOSURE", "old", dt.date(2026, 1, 1))
    records = [
        _record("TLS-NO-LEGACY-TLS", "mail.example.com", "993-TLSv1.0", "failed"),
        _record("TLS-NO-LEGACY-TLS", "mail.example.com", "995-TLSv1.0", "passed"),
        _record("SMTP-VRFY-EXPN", "mail.example.com", "", "waived"),
        _record("DNS-SPF-POLICY", "mail.example.com", "", "passed"),
        _record("DNS-DMARC-RECORD", "mail.example.com", "", "failed"),
        _record("SMTP-BANNER-DISCLOSURE", "mail.example.com", "", "passed"),
    ]
    notes = review_waivers([expired, used, not_needed, matches_nothing, expired_quiet], records, TODAY)
    messages = [(n.kind, n.message) for n in notes]
    assert messages == [
        ("expired", "waiver for TLS-NO-LEGACY-TLS on mail.example.com (993-TLSv1.0) expired on 2026-11-01: "
                    "the failure is back"),
        ("unused", "waiver for DNS-SPF-POLICY on * (until 2027-01-01) was not needed: no failure to waive (passed)"),
        ("unused", "waiver for DNS-DMARC-RECORD on mx.* (until 2027-01-01) matched no verdict of this run"),
        ("expired", "waiver for SMTP-BANNER-DISCLOSURE on * expired on 2026-01-01; "
                    "no failure it would cover in this run"),
    ]
