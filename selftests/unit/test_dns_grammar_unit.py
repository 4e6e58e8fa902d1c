"""The record grammars, offline: SPF (RFC 7208 §12), DMARC (RFC 7489 §6.4), MTA-STS and TLS-RPT.
Strict, ASCII digits only, never an exception, linear on hostile input."""

from __future__ import annotations

import time

import pytest

from mailaudit.dns_records import (
    ascii_int,
    is_dmarc_candidate,
    is_host_name,
    mta_sts_record_errors,
    parse_dmarc,
    parse_dmarc_uri,
    parse_mta_sts_policy,
    parse_spf,
    starts_with_dmarc1,
    tlsrpt_record,
)

NON_ASCII_DIGITS = ("¹⁰⁰", "١٠٠", "１００", "𝟏𝟎𝟎")  # superscript, Arabic-Indic, fullwidth, mathematical


@pytest.mark.parametrize("text", NON_ASCII_DIGITS)
def test_numbers_are_ascii_digits_only(text):
    """Digits outside ASCII are not numbers (Python's int() would take some of them)."""
    assert ascii_int(text, 0, 1000) is None


def test_ascii_int_bounds_and_length():
    """In range, ASCII, not absurdly long."""
    assert ascii_int("100", 0, 100) == 100 and ascii_int("101", 0, 100) is None
    assert ascii_int("", 0, 1) is None and ascii_int("-1", -5, 5) is None and ascii_int("9" * 11, 0, 10**12) is None


@pytest.mark.parametrize("record", [
    "v=spf1 -all",
    "v=spf1",
    "V=SPF1 MX -ALL",
    "v=spf1 mx include:_spf.hardened.test -all",
    "v=spf1 ip4:127.0.0.10 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all",
    "v=spf1 a a:mail.example.test/24 a//64 mx:example.test/24//64 ptr ?all",
    "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all",
    "v=spf1 include:_spf.example.test. -all",
    "v=spf1 redirect=_spf.example.test",
    "v=spf1 -all exp=explain.%{d} moo=cow",
    "v=spf1 include:_spf.example.test  -all ",
])
def test_valid_spf_records(record):
    """Records the RFC 7208 grammar accepts."""
    assert parse_spf(record).errors == ()


@pytest.mark.parametrize(("record", "named"), [
    ("v=spf1 foo:bar -all", "unknown mechanism"),
    ("v=spf1 ip4:192.0.2.300 -all", "dotted-quad"),
    ("v=spf1 ip4:192.0.2.1/33 -all", "prefix length"),
    ("v=spf1 ip4:192.0.2.1/²⁴ -all", "prefix length"),
    ("v=spf1 a:mail.example.test/３２ -all", "US-ASCII"),
    ("v=spf1 ip6:2001:db8::/129 -all", "prefix length"),
    ("v=spf1 ip6:not-an-address -all", "IPv6"),
    ("v=spf1 include -all", "needs ':domain'"),
    ("v=spf1 include:192.0.2.1 -all", "top label"),
    ("v=spf1 include:example -all", "top label"),
    ("v=spf1 all:x", "takes no argument"),
    ("v=spf1 -redirect=x.example.test", "unknown mechanism"),
    ("v=spf1 redirect=a.example.test redirect=b.example.test", "2 redirect= modifiers"),
    ("v=spf1 exists:%{z}.example.test -all", "unknown macro letter"),
    ("v=spf1 exists:%{c}.example.test -all", "only in exp= text"),
    ("v=spf1 exists:100%.example.test -all", "invalid character or macro"),
    ("v=spf1 mx -all\tip4:192.0.2.1", "tab"),
    ("v=spf1 ip4:192.0.2.1 ～all", "US-ASCII"),
])
def test_invalid_spf_records_name_the_term(record, named):
    """Each grammar error is named with the offending term."""
    errors = parse_spf(record).errors
    assert errors and any(named in e for e in errors), errors


def test_spf_all_and_modifiers_as_written():
    """The first all with its qualifier; redirect and exp arguments."""
    syntax = parse_spf("v=spf1 mx ~all -all redirect=r.example.test exp=e.example.test")
    assert syntax.all_term == "~all"
    assert syntax.modifier("redirect") == "r.example.test" and syntax.modifier("exp") == "e.example.test"
    assert any("never evaluated" in w for w in syntax.warnings) and any("ignored" in w for w in syntax.warnings)


@pytest.mark.parametrize("size", [60_000])
def test_hostile_long_terms_parse_in_linear_time(size):
    """A 60 kB domain-spec (a TXT record can be that big) is judged in linear time: a few tenths
    of a second (a quadratic parser would take minutes); the bound leaves room for a loaded CI."""
    started = time.monotonic()
    for record in (f"v=spf1 include:{'a.' * (size // 2)}-all", f"v=spf1 exists:{'1' * size}.x -all",
                   f"v=spf1 a:{'%{d}' * (size // 4)} -all", f"v=spf1 ip4:{'1.' * size}"):
        parse_spf(record)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("record", [
    "v=DMARC1; p=reject",
    "v=DMARC1;p=none;",
    "v = DMARC1 ; p = quarantine ; sp=reject; pct=0",
    "v=DMARC1; p=reject; sp=reject; pct=100; adkim=s; aspf=r; ri=86400; fo=0:1:d:s; rf=afrf",
    "v=DMARC1; p=reject; rua=mailto:d@example.test!10m, mailto:e@example.test,https://r.example.test/x",
    "v=DMARC1; p=reject; np=reject",  # unknown tags are ignored (a warning)
])
def test_valid_dmarc_records(record):
    """Records the RFC 7489 grammar accepts."""
    assert parse_dmarc(record).errors == ()


@pytest.mark.parametrize(("record", "named"), [
    *((f"v=DMARC1; p=reject; pct={digits}", "pct=") for digits in NON_ASCII_DIGITS),
    ("v=DMARC1; p=reject; pct=101", "pct=101"),
    ("v=DMARC1; p=reject; pct=", "pct="),
    ("v=DMARC1; p=reject; ri=٣٠٠", "ri="),
    ("v=DMARC1; p=maybe", "p=maybe"),
    ("v=DMARC1; p=reject; sp=never", "sp=never"),
    ("v=DMARC1; sp=reject", "no p= tag"),
    ("v=DMARC1; p=reject; p=none", "p= appears 2 times"),
    ("v=DMARC1; p=reject; adkim=x", "adkim=x"),
    ("v=DMARC1; p=reject; fo=2", "fo=2"),
    ("v=DMARC1; p=reject; rua=d@example.test", "not a URI"),
    ("v=DMARC1; p=reject; rua=mailto:d@example", "valid domain"),
    ("v=DMARC1; p=reject; rua=mailto:d@example.test!10x", "size limit"),
    ("v=DMARC1; p=reject;; rua=mailto:d@example.test", "not tag=value"),
    ("v=dmarc1; p=reject", "v=DMARC1"),
    ("v=DMARC1; p=reject; rua=mailto:d@exämple.test", "US-ASCII"),
])
def test_invalid_dmarc_records_name_the_tag(record, named):
    """Each grammar error names the tag; superscript or other non-ASCII digits are errors, never a
    ValueError."""
    errors = parse_dmarc(record).errors
    assert errors and any(named in e for e in errors), errors


def test_p_after_another_tag_is_a_warning_not_an_error():
    """RFC 7489's grammar puts p= right after v=, but receivers (and DMARCbis) apply the record in any
    order: a valid record whose p= comes later is valid, with a warning."""
    syntax = parse_dmarc("v=DMARC1; rua=mailto:d@example.test; p=reject")
    assert syntax.errors == () and any("right after v=" in w for w in syntax.warnings)


def test_dmarc_values_as_read():
    """p and sp lower-cased, sp defaulting to p, pct defaulting to 100 and None when invalid."""
    syntax = parse_dmarc("v=DMARC1; p=REJECT; pct=50")
    assert (syntax.policy, syntax.subdomain_policy, syntax.pct) == ("reject", "reject", 50)
    assert parse_dmarc("v=DMARC1; p=reject; pct=¹⁰⁰").pct is None
    assert parse_dmarc("v=DMARC1; p=none; sp=bogus").subdomain_policy is None


def test_dmarc_candidates_and_authorization_records():
    """Anything starting v=DMARC is a candidate (judged strictly); authorization needs v=DMARC1."""
    assert is_dmarc_candidate("v=DMARC1; p=none") and is_dmarc_candidate(" V = dmarc2")
    assert not is_dmarc_candidate("v=spf1 -all")
    assert starts_with_dmarc1("v=DMARC1") and starts_with_dmarc1("v=DMARC1;") and not starts_with_dmarc1("v=DMARC10")


def test_mailto_uris():
    """mailto: with a valid domain gives the address; other schemes are URIs without one."""
    assert parse_dmarc_uri("mailto:d@example.test!5m").address == "d@example.test"
    assert parse_dmarc_uri("https://r.example.test/").address == "" and not parse_dmarc_uri("https://r.test/").error
    assert parse_dmarc_uri("mailto:@example.test").error


def test_host_names():
    """LDH labels, a dot, not all-numeric at the top."""
    assert is_host_name("mail.example.test") and is_host_name("mail.example.test.")
    assert not is_host_name("example") and not is_host_name("a..b.test") and not is_host_name("192.0.2.1")
    assert not is_host_name("-a.example.test") and not is_host_name(("a" * 64) + ".test")


def test_mta_sts_and_tlsrpt_records():
    """RFC 8461 §3.1 and RFC 8460 §3 records."""
    assert mta_sts_record_errors("v=STSv1; id=20261101") == []
    assert mta_sts_record_errors("v=STSv1; id=a; id=b") and mta_sts_record_errors("v=STSv1")
    assert mta_sts_record_errors("v=stsv1; id=1")
    assert tlsrpt_record("v=TLSRPTv1; rua=mailto:t@example.test, https://r.example.test/x")[1] == []
    assert tlsrpt_record("v=TLSRPTv1; rua=mailto:t@example")[1]


def test_mta_sts_policy_with_lf_line_ends_and_extensions():
    """LF line ends are allowed; unknown keys are extensions."""
    policy = parse_mta_sts_policy("version: STSv1\nmode: testing\nmx: *.example.test\nmax_age: 86400\nfoo: bar\n")
    assert policy.errors == () and policy.mode == "testing" and policy.mx == ("*.example.test",)
