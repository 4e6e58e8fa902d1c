"""Offline tests of the banner judgements: product and version patterns, greeting host vs PTR."""

import pytest

from mailaudit.evaluate.smtp import disclosures, evaluate_banner_disclosure, evaluate_banner_hostname, greeting_host
from mailaudit.probes.smtp import Reply
from mailaudit.probes.smtp_checks import PortSnapshot, PtrAnswer
from mailaudit.verdict import Outcome


@pytest.mark.parametrize(("line", "expected"), [
    ("mail.example.com ESMTP Postfix (Debian/GNU)", ["product 'Postfix'", "product 'Debian'"]),
    ("mail.weak.test ESMTP Postfix 3.7.11 (Debian) <b>lab</b>", ["product 'Postfix'", "version '3.7.11'"]),
    ("mx.example.com ESMTP Exim 4.96 Fri, 27 Nov 2026 22:00:00 +0000", ["product 'Exim'", "version '4.96'"]),
    ("mx.example.com ESMTP Sendmail 8.15.2/8.15.2; Fri, 27 Nov 2026", ["product 'Sendmail'", "version '8.15.2'"]),
    ("mail.example.com Microsoft ESMTP MAIL Service ready at Fri, 27 Nov 2026",
     ["product 'Microsoft ESMTP MAIL Service'"]),
    ("mail.example.com SmarterMail", ["product 'SmarterMail'"]),
    ("mail.example.com ESMTP MailEnable Service, Version: 10.44--", ["product 'MailEnable'", "version '10.44'"]),
])
def test_products_and_versions_are_found(line, expected):
    """Greetings of common servers reveal their product and version."""
    found = disclosures([line])
    for item in expected:
        assert item in found, found


@pytest.mark.parametrize("line", [
    "mail.hardened.test ESMTP",
    "mx1.example.com ESMTP ready",
    "postfix3.example.com ESMTP",  # the admin's host name is not judged
    "mail.example.com Hello mailaudit.invalid [192.0.2.7]",  # the client's IP is not a version
    "2.0.0 mail.example.com ready",  # an enhanced status code is not a version
])
def test_neutral_lines_reveal_nothing(line):
    """Host names with digits, IP addresses and status codes are not versions."""
    assert disclosures([line]) == []


def test_ehlo_keywords_of_exchange_are_a_fingerprint():
    """XEXCH50 in an EHLO reply names the product as surely as the greeting would."""
    assert any("Microsoft Exchange" in d for d in disclosures(["mail.example.com", "XEXCH50", "SIZE 10240000"]))


def _snapshot(greeting: str, ehlo: tuple[str, ...] = ("mail.example.com", "PIPELINING")) -> PortSnapshot:
    return PortSnapshot(25, False, Reply(220, (greeting,)), Reply(250, ehlo), None, None, None, "S: 220 " + greeting)


def test_disclosure_fails_on_version_and_names_the_reply():
    """The failure message quotes the reply that reveals the version."""
    evaluation = evaluate_banner_disclosure(_snapshot("mail.weak.test ESMTP Postfix 3.7.11"))
    assert evaluation.outcome is Outcome.FAILED
    assert "greeting" in evaluation.message and "3.7.11" in evaluation.message


def test_disclosure_passes_on_plain_greeting():
    """Host name and ESMTP only: nothing revealed."""
    assert evaluate_banner_disclosure(_snapshot("mail.hardened.test ESMTP")).passed


@pytest.mark.parametrize(("greeting", "host"), [
    ("mail.example.com ESMTP", "mail.example.com"),
    ("MAIL.Example.COM. ready", "mail.example.com"),
    ("ESMTP ready", None),
    ("[192.0.2.7] ESMTP", None),
    ("*****************", None),
])
def test_greeting_host(greeting, host):
    """The host name is the first word of the greeting, if it is one."""
    assert greeting_host(Reply(220, (greeting,))) == host


def test_hostname_matches_ptr():
    """A greeting naming the PTR host passes; another name or no PTR fails."""
    ptr = PtrAnswer("192.0.2.7", "7.2.0.192.in-addr.arpa.", ("mail.example.com",))
    assert evaluate_banner_hostname(_snapshot("mail.example.com ESMTP"), ptr).passed
    mismatch = evaluate_banner_hostname(_snapshot("mail.other.test ESMTP"), ptr)
    assert mismatch.outcome is Outcome.FAILED and "mail.other.test" in mismatch.message
    assert "mail.example.com" in mismatch.message
    none = evaluate_banner_hostname(_snapshot("mail.example.com ESMTP"), PtrAnswer("192.0.2.7", "q", ()))
    assert none.outcome is Outcome.FAILED and "no PTR" in none.message
