"""DNS-DMARC-*: one valid DMARC record, an enforcing policy, authorized aggregate reporting."""

import pytest

from mailaudit.evaluate.dns import evaluate_dmarc_policy, evaluate_dmarc_record, evaluate_dmarc_reporting


@pytest.mark.requirement("DNS-DMARC-RECORD")
def test_domain_has_exactly_one_valid_dmarc_record(dns_dmarc, verdict, evidence):
    """Exactly one valid DMARC record at _dmarc.<domain>."""
    evidence("DNS queries", dns_dmarc.log)
    verdict(evaluate_dmarc_record(dns_dmarc))


@pytest.mark.requirement("DNS-DMARC-POLICY")
def test_dmarc_policy_enforces_on_all_mail(dns_dmarc, audit_config, verdict):
    """p (and sp) at least the policy minimum (default quarantine), pct=100."""
    verdict(evaluate_dmarc_policy(dns_dmarc, audit_config.policy.dns))


@pytest.mark.requirement("DNS-DMARC-REPORTING")
def test_dmarc_reports_go_to_authorized_destinations(dns_dmarc, verdict):
    """rua present; external report destinations authorized."""
    verdict(evaluate_dmarc_reporting(dns_dmarc))
