"""DNS-MX and DNS-PTR: the domain's MX records reach the server; every server IP has FCrDNS."""

import pytest

from mailaudit.evaluate.dns import evaluate_mx, evaluate_ptr


@pytest.mark.requirement("DNS-MX")
def test_domain_has_mx_records_reaching_the_server(target, dns_mx, verdict):
    """The domain has MX records (null MX handled) and the server is reachable through them."""
    verdict(evaluate_mx(dns_mx, target.ip))


@pytest.mark.requirement("DNS-PTR")
def test_every_server_ip_has_forward_confirmed_reverse_dns(dns_ptr, verdict):
    """Every server IP has a PTR whose name resolves back to the IP (FCrDNS)."""
    verdict(evaluate_ptr(dns_ptr))
