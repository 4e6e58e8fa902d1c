"""DNS-MTA-STS and DNS-TLSRPT: SMTP TLS is enforced by MTA-STS and failures are reported."""

import pytest

from mailaudit.evaluate.dns import evaluate_mta_sts, evaluate_tlsrpt


@pytest.mark.requirement("DNS-MTA-STS")
def test_mta_sts_enforces_tls_for_every_mx(dns_mta_sts, audit_config, verdict, evidence):
    """_mta-sts TXT present, the HTTPS policy is served, mode enforce, every MX matches a policy mx pattern."""
    evidence("DNS queries", dns_mta_sts.log)
    verdict(evaluate_mta_sts(dns_mta_sts, audit_config.policy.dns))


@pytest.mark.requirement("DNS-TLSRPT")
def test_tls_reporting_record_exists(target, dns_tlsrpt, verdict):
    """A valid _smtp._tls TLS-RPT record exists."""
    verdict(evaluate_tlsrpt(target.domain, dns_tlsrpt))
