"""Offline tests of option validation: every bad value is one ConfigError line naming the option,
raised before any file is parsed or any name resolved; good values pass (normalised)."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest

from mailaudit.config import Options, build_config, checked_options
from mailaudit.errors import ConfigError
from mailaudit.redact import redact
from mailaudit.syntax import BadSyntax, check_hostname, check_mailbox, check_port_list, check_url

REPO = Path(__file__).resolve().parents[2]
BASE = {"servers": ("192.0.2.1",), "domains": ("example.test",), "policy": str(REPO / "policies" / "baseline.yaml")}


def _refused(**changes: object) -> str:
    """The one-line error the options give (the test fails if they are accepted)."""
    with pytest.raises(ConfigError) as info:
        checked_options(Options(**{**BASE, **changes}))
    message = str(info.value)
    assert "\n" not in message and "\r" not in message, message
    return message


@pytest.mark.parametrize(("changes", "expected"), [
    ({"servers": ("a" * 300 + ".example.com",)}, "label of 300 characters; at most 63"),
    ({"servers": (".".join(["abcdefghi"] * 26),)}, "259 characters long; at most 253"),
    ({"servers": ("mail..example.com",)}, "empty label"),
    ({"servers": ("mail_1.example.com",)}, "may hold only letters"),
    ({"servers": ("-mail.example.com",)}, "may hold only letters"),
    ({"servers": ("",)}, "--server '': empty value"),
    ({"servers": ("mail.example.com\r\nDATA",)}, "control character CR"),
    ({"servers": ("bücher.example",)}, "xn--"),
    ({"domains": ("",)}, "--domain '': empty value"),
    ({"domains": ("  ",)}, "--domain '  ': empty value"),
    ({"domains": ("example.test\r\nDATA",)}, "--domain 'example.test\\r\\nDATA': control character CR"),
    ({"domains": ("example.test\nRCPT TO:<x@y>",)}, "control character LF"),
    ({"domains": ("192.0.2.1",)}, "all-numeric label"),
    ({"relay_recipient_domain": ""}, "--relay-recipient-domain '': empty value"),
    ({"relay_recipient_domain": "example.net>"}, "may hold only letters"),
    ({"local_recipient": "postmaster@example.test>\r\nDATA"}, "--local-recipient"),
    ({"local_recipient": "postmaster@example.test\0"}, "control character NUL"),
    ({"local_recipient": "postmaster"}, "not an address"),
    ({"local_recipient": "post master@example.test"}, "neither a dot-atom nor a quoted string"),
    ({"local_recipient": "a" * 65 + "@example.test"}, "at most 64"),
    ({"local_recipient": "x@[300.1.1.1]"}, "address literal"),
    ({"local_recipient": "x@example.test."}, "no final dot"),
    ({"smtp_user": "bob\0"}, "--smtp-user 'bob\\x00': control character NUL"),
    ({"smtp_user": "bob smith"}, "neither a dot-atom"),
    ({"smtp_user": "alice@exa mple.test"}, "--smtp-user"),
    ({"smtp_user": ""}, "empty value"),
    ({"tls_ports": "²"}, "--tls-ports '²': '²' is not a port number"),
    ({"tls_ports": "25,٥٨٧"}, "not a port number"),
    ({"tls_ports": "+25"}, "not a port number"),
    ({"tls_ports": "0"}, "out of range"),
    ({"tls_ports": "65536"}, "out of range"),
    ({"tls_ports": "9" * 5000}, "not a port number"),
    ({"tls_ports": "25,,587"}, "empty port"),
    ({"tls_ports": "25,25"}, "given twice"),
    ({"tls_ports": ""}, "empty value"),
    ({"dkim_selectors": ("",)}, "--dkim-selector '': empty value"),
    ({"dkim_selectors": ("s1..k",)}, "empty label"),
    ({"dkim_selectors": ("s1 k",)}, "may hold only"),
    ({"api_urls": ("ftp://x",)}, "--api-url 'ftp://x': scheme must be https://"),
    ({"api_urls": ("http://{server}",)}, "--api-allow-http"),
    ({"api_urls": ("https://user:pw@{server}",)}, "no user or password"),
    ({"api_urls": ("https://{server}:99999",)}, "not a valid URL"),
    ({"api_urls": ("https:///path",)}, "names no host"),
    ({"api_urls": ("https://{server}/?x=1",)}, "query"),
    ({"api_urls": ("",)}, "empty value"),
    ({"outbound_ips": ("not-an-ip",)}, "--outbound-ip 'not-an-ip': not an IP address"),
    ({"policy": ""}, "--policy '': empty value"),
    ({"waivers": ""}, "--waivers '': empty value"),
    ({"ca_file": ""}, "--ca-file '': empty value"),
    ({"domains": ("a.test", "b.test")}, "one per --server"),
])
def test_bad_option_values_are_one_line_naming_the_option(changes, expected):
    """Each malformed option value is refused with one line naming the option and the reason."""
    message = _refused(**changes)
    assert expected in message, message
    assert message.startswith("--"), message


def test_good_values_pass_and_domains_lose_their_final_dot():
    """Valid names, mailboxes (quoted, address literal), ports and URLs are accepted."""
    options = checked_options(Options(
        servers=("Mail.Example.com.", "2001:db8::1", "192.0.2.1"), domains=("example.com.",),
        relay_recipient_domain="example.net.", local_recipient='"john doe"@[IPv6:2001:db8::1]',
        smtp_user="alice", tls_ports=" 25, 587,993", dkim_selectors=("s_1.k-2", "20230601"),
        api_urls=("https://{server}:8443/sm",)))
    assert options.domains == ("example.com",) and options.relay_recipient_domain == "example.net"
    assert check_port_list(options.tls_ports) == (25, 587, 993)


def test_http_api_url_needs_the_explicit_flag():
    """A plain http:// API URL is accepted only with --api-allow-http."""
    _refused(api_urls=("http://{server}/",))
    assert checked_options(Options(**BASE, api_urls=("http://{server}/",), api_allow_http=True))


def test_syntax_is_checked_before_the_policy_and_before_any_dns_query(tmp_path):
    """A bad value is reported at once, even with an unreadable policy and a resolver that never
    answers (192.0.2.1, TEST-NET): no file is parsed and no name is resolved first."""
    start = time.monotonic()
    with pytest.raises(ConfigError, match="--domain"):
        build_config(Options(servers=("mail.unresolvable.invalid",), domains=("bad..test",),
                             dns_server="192.0.2.1", policy=str(tmp_path / "missing.yaml")), env={})
    assert time.monotonic() - start < 1


def test_build_config_parses_tls_ports_and_registers_the_passwords_for_redaction():
    """build_config gives the TLS ports as integers and makes both passwords (with the AUTH
    PLAIN form of the SMTP user's) disappear from redacted text."""
    env = {"MAILAUDIT_SMTP_PASSWORD": "cfg-smtp-Secret-1", "MAILAUDIT_API_USER": "admin",
           "MAILAUDIT_API_PASSWORD": "cfg-api-Secret-2"}
    audit = build_config(Options(**BASE, smtp_user="carol@example.test", tls_ports="25,465"), env=env)
    assert audit.tls_ports == (25, 465)
    plain = base64.b64encode(b"\0carol@example.test\0cfg-smtp-Secret-1").decode()
    assert redact(f"cfg-smtp-Secret-1 cfg-api-Secret-2 535 {plain[:30]}").count("[redacted]") == 3


def test_a_nul_in_the_smtp_password_is_refused():
    """AUTH PLAIN separates fields with NUL (RFC 4616): a password holding one is refused, unshown."""
    with pytest.raises(ConfigError, match="NUL") as info:
        build_config(Options(**BASE), env={"MAILAUDIT_SMTP_PASSWORD": "abc\0def"})
    assert "abc" not in str(info.value)


@pytest.mark.parametrize(("check", "value"), [
    (check_hostname, "a" * 63 + ".example.com"),
    (check_hostname, ".".join(["a" * 63] * 3) + "." + "b" * 61),
    (check_mailbox, "!#$%&'*+-/=?^_`{|}~@example.com"),
    (check_mailbox, '"a@b\\"c"@example.com'),
    (check_mailbox, "x@[192.0.2.1]"),
    (check_url, "https://[2001:db8::1]:8443/"),
])
def test_edge_values_within_the_limits_are_accepted(check, value):
    """Values exactly at the RFC limits, and the rarer but valid forms, are accepted."""
    if check is check_url:
        assert check(value, ("https",)) == value
    else:
        assert check(value) == value


@pytest.mark.parametrize("value", ["a" * 64 + ".example.com", ".".join(["a" * 63] * 3) + "." + "b" * 62])
def test_hostname_one_octet_over_the_limit_is_refused(value):
    """One octet over a label (63) or a name (253 characters, 255 octets on the wire) is refused."""
    with pytest.raises(BadSyntax):
        check_hostname(value)
