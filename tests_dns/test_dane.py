"""DNS-DANE: TLSA records for the MX are DNSSEC-secure and match the certificate served on port 25."""

import pytest

from mailaudit.evaluate.dns import evaluate_dane


@pytest.mark.requirement("DNS-DANE")
def test_tlsa_records_are_secure_and_match_the_served_certificate(dns_dane, verdict, evidence):
    """Where TLSA records exist for the MX, they are DNSSEC-secure and match the served certificate."""
    evidence("DNS queries", dns_dane.log)
    verdict(evaluate_dane(dns_dane))
