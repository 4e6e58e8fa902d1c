"""DNS-SPF-*: one valid SPF record, a strict all, within the lookup limits, authorizing the server."""

import pytest

from mailaudit.evaluate.dns import (
    evaluate_spf_authorizes,
    evaluate_spf_lookups,
    evaluate_spf_policy,
    evaluate_spf_record,
)


@pytest.mark.requirement("DNS-SPF-RECORD")
def test_domain_has_exactly_one_valid_spf_record(dns_spf, verdict, evidence):
    """Exactly one valid SPF record."""
    evidence("DNS queries", dns_spf.log)
    verdict(evaluate_spf_record(dns_spf))


@pytest.mark.requirement("DNS-SPF-POLICY")
def test_spf_ends_in_an_allowed_all(dns_spf, audit_config, verdict):
    """It ends in -all (policy may allow ~all); never +all, ?all or no all."""
    verdict(evaluate_spf_policy(dns_spf, audit_config.policy.dns))


@pytest.mark.requirement("DNS-SPF-LOOKUPS")
def test_spf_stays_within_the_dns_lookup_limits(dns_spf, audit_config, verdict):
    """At most 10 DNS-querying terms and at most 2 void lookups, counted recursively; a loop or a
    record whose lookups cannot be counted never passes."""
    verdict(evaluate_spf_lookups(dns_spf, audit_config.policy.dns))


@pytest.mark.requirement("DNS-SPF-AUTHORIZES-SERVER")
def test_spf_authorizes_the_server_outbound_ip(dns_spf, dns_spf_results, verdict):
    """The server's outbound IP evaluates to pass under the domain's SPF."""
    verdict(evaluate_spf_authorizes(dns_spf, dns_spf_results))
