"""DNS error mapping, offline: SERVFAIL, REFUSED and timeouts are DnsErrors; NXDOMAIN is an answer."""

from __future__ import annotations

import time

import dns.message
import dns.resolver
import pytest

from mailaudit.errors import DnsError, ProbeError
from mailaudit.probes.dns import DnsClient, DnsSettings, evaluate_spf_ip, probe_spf, translate_dns_exception
from mailaudit.resolver import DnsServer
from selftests.unit.dns_fakes import MisbehavingDnsServer


def _client(port: int, timeout: float = 0.3, retries: int = 1) -> DnsClient:
    return DnsClient(DnsSettings(DnsServer("127.0.0.1", port), timeout, retries))


@pytest.mark.parametrize("rcode", ["SERVFAIL", "REFUSED"])
def test_failing_rcode_is_a_dns_error_naming_query_and_resolver(rcode):
    """A resolver answering SERVFAIL or REFUSED makes the query an error, never an empty answer."""
    with MisbehavingDnsServer(rcode) as server, pytest.raises(DnsError) as caught:
        _client(server.port).query("example.test", "TXT")
    message = str(caught.value)
    assert rcode in message and "example.test TXT" in message and f"127.0.0.1:{server.port}" in message
    assert isinstance(caught.value, ProbeError)


def test_silent_resolver_times_out_after_the_policy_budget():
    """A resolver that never answers is an error after timeout x (retries + 1), with both in the message."""
    with MisbehavingDnsServer(None) as server:
        started = time.monotonic()
        with pytest.raises(DnsError) as caught:
            _client(server.port, timeout=0.3, retries=1).query("example.test", "MX")
        elapsed = time.monotonic() - started
        asked = server.queries
    assert "no answer within 0.6 s (2 tries)" in str(caught.value)
    assert 0.5 <= elapsed < 3
    assert asked >= 2  # the retry really went out


def test_servfail_inside_an_spf_probe_is_an_error_not_a_missing_record():
    """A failing resolver under the SPF probe raises instead of reporting 'no SPF record'."""
    with MisbehavingDnsServer("SERVFAIL") as server, pytest.raises(DnsError):
        probe_spf(_client(server.port), "example.test")


def test_pyspf_temperror_is_a_dns_error():
    """pyspf's temperror (DNS trouble during check_host) is an error, not an SPF verdict."""
    with MisbehavingDnsServer("SERVFAIL") as server, pytest.raises(DnsError) as caught:
        evaluate_spf_ip(_client(server.port), "example.test", "192.0.2.1", "mail.example.test")
    assert "temperror" in str(caught.value)


def test_translate_keeps_every_rcode_reported_by_dnspython():
    """NoNameservers lists what each server said; the message keeps the rcodes."""
    settings = DnsSettings(DnsServer("192.0.2.53"), 1, 0)
    request = dns.message.make_query("x.test", "A")
    exc = dns.resolver.NoNameservers(request=request, errors=[("Do53:192.0.2.53@53", False, 53, "SERVFAIL", None)])
    assert "SERVFAIL" in str(translate_dns_exception(exc, "x.test", "A", settings))
    timeout = translate_dns_exception(dns.exception.Timeout(), "x.test", "A", settings)
    assert "no answer within 1 s (1 tries)" in str(timeout)
