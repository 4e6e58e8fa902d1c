"""DNS-DNSBL: no server IP is listed on the policy's blocklists (one verdict per zone)."""

import pytest

from mailaudit.evaluate.dns import evaluate_dnsbl


@pytest.mark.requirement("DNS-DNSBL")
def test_server_ips_are_not_listed_on_blocklists(dnsbl_zone, dns_dnsbl, verdict):
    """No server IP is listed on the policy's blocklists; blocklist error codes (e.g. 127.255.255.x) are
    errors, not listings; each zone's RFC 5782 test entry is checked first."""
    verdict(evaluate_dnsbl(dns_dnsbl, dnsbl_zone))
