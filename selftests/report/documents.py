"""A synthetic results document for the report self-tests: two servers, all six outcomes, rolled-up
variants, one cause behind several errors, policy leaves, waivers, changes, evidence files small
and large, and hostile server text in a banner, a TXT record and an API value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mailaudit.catalog import load_catalog
from mailaudit.results import build_document, catalog_fields

# Server-supplied text that must stay text: a script, an image with an onerror handler, a cell end.
SCRIPT = "<script>document.title='pwned'</script>"
IMG = "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"
CELL_END = "</td></tr></table>"
HOSTILE = f"{SCRIPT} {IMG} {CELL_END}"
HOSTILE_BANNER = f"220 mx1.example.test ESMTP {HOSTILE}"
HOSTILE_TXT = f'"v=spf1 {HOSTILE} -all"'
HOSTILE_API = f"allowRelay = {HOSTILE}"

SERVERS = ("mx1.example.test", "mx2.example.test")
API_DOWN = "mx1.example.test:443: connection refused (nothing listens on the API port)"
LARGE_CHARS = 5000
CA_FILE = "/home/auditor/private/ca.pem"  # a machine path the report must show as "ca.pem"


class EvidenceWriter:
    """Writes evidence files the way the suite's store does (``<folder>/<name>.txt``)."""

    def __init__(self, base: Path, folder: str = "results-evidence") -> None:
        self.base, self.folder = base, folder
        (base / folder).mkdir(parents=True, exist_ok=True)
        self.count = 0

    def piece(self, name: str, text: str, inline: bool = True) -> dict[str, Any]:
        """One evidence reference; ``inline`` pieces carry their text like small pieces do."""
        self.count += 1
        file = f"{self.folder}/{self.count:020x}.txt"
        (self.base / file).write_text(text, encoding="utf-8")
        ref: dict[str, Any] = {"name": name, "file": file, "chars": len(text)}
        if inline:
            ref["text"] = text
        return ref


def record(requirement: str, server: str, outcome: str, message: str, variant: str = "",
           evidence: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    """A results record as the plugin writes it (catalog words included)."""
    catalog = load_catalog()[requirement]
    return {"requirement": requirement, "server": server, "variant": variant, "outcome": outcome,
            "severity": extra.pop("severity", catalog.severity), "message": message,
            "nodeid": f"tests/test_x.py::test_{requirement.lower()}[{variant}-{server}]",
            **catalog_fields(catalog), "evidence": evidence or [], "policy": extra.pop("policy", []),
            "basis": extra.pop("basis", ""), "internal_error": extra.pop("internal_error", False), **extra}


def synthetic_document(base: Path) -> dict[str, Any]:
    """The document, with its evidence files written under ``base`` (the results JSON's folder)."""
    ev = EvidenceWriter(base)
    mx1, mx2 = SERVERS
    banner = ev.piece("SMTP transcript", f"* connected to 192.0.2.1:25\nS: {HOSTILE_BANNER}\nC: EHLO mailaudit.invalid")
    shared = ev.piece("DNS queries", "example.test TXT -> (two records)")
    large = ev.piece("sslyze JSON mx1.example.test:993", "{" + "x" * LARGE_CHARS + "}", inline=False)
    records = [
        *[record("SMTP-OPEN-RELAY", mx1, "failed", f"relay variant {form}: RCPT accepted with 250 2.1.5 Ok",
                 variant=f"25-plain-{form}", evidence=[ev.piece("SMTP transcript", f"C: RCPT TO:<{form}>\nS: 250")])
          for form in ("null-sender", "percent-hack", "bang-path")],
        record("SMTP-BANNER-DISCLOSURE", mx1, "failed", f"the greeting ({HOSTILE_BANNER}) reveals a product",
               variant="25", evidence=[banner]),
        record("SMTP-BANNER-HOSTNAME", mx1, "failed", "greeting names mx1, PTR names other.example.test",
               evidence=[banner]),
        record("DNS-SPF-RECORD", mx1, "failed", f"expected one SPF record, found 2: {HOSTILE_TXT}",
               evidence=[shared, ev.piece("TXT records", f"example.test TXT {HOSTILE_TXT}")]),
        record("API-RELAY", mx1, "failed", f"Allow Relay is not Nobody: {HOSTILE_API}",
               basis=f"confirmed field-map entry smtpInSettings.allowRelay (value {HOSTILE})",
               evidence=[ev.piece("API values", HOSTILE_API)]),
        record("SMTP-HARVEST-DEFENSE", mx1, "failed", "31 unknown recipients answered without 421",
               policy=[{"key": "smtp.harvest_attempts", "value": 30, "source": "guide (IDS Bad SMTP Sessions)"}]),
        record("TLS-NO-LEGACY-TLS", mx1, "failed", "mx1.example.test:993 accepts TLSv1.0", variant="993-TLSv1.0",
               evidence=[large]),
        record("TLS-NO-LEGACY-TLS", mx1, "passed", "mx1.example.test:993 refuses TLSv1.1", variant="993-TLSv1.1",
               evidence=[large]),
        record("TLS-CERT-TRUST", mx1, "failed", f"mx1.example.test:993: not trusted by {CA_FILE}",
               variant="993", evidence=[ev.piece("TLS scan summary", f"trust store: {CA_FILE}\nverify: failed")]),
        record("SMTP-AUTH-MATCH", mx1, "failed", "alice may send as bob",
               lapsed_waiver={"requirement": "SMTP-AUTH-MATCH", "server": "*", "variant": "*",
                              "reason": "migration window (ticket 17)", "expires": "2026-01-31"}),
        *[record(rid, mx1, "error", API_DOWN) for rid in ("API-VERSION", "API-AUTH-MATCH", "API-CATCHALL")],
        record("SMTP-CATCHALL", mx1, "inconclusive", "RCPT answered 451 4.7.1 greylisted: cannot decide"),
        record("TLS-CERT-EXPIRY", mx1, "waived", "waived until 2099-12-31: renewal booked — expires in 5 days",
               waiver={"requirement": "TLS-CERT-EXPIRY", "server": "mx1.*", "variant": "*",
                       "reason": "renewal booked", "expires": "2099-12-31"}),
        record("DNS-DANE", mx1, "skipped", "no TLSA records for _25._tcp.mx1.example.test"),
        record("TLS-NO-SSL", mx1, "passed", "mx1.example.test:993 refuses SSLv2 and SSLv3", evidence=[shared]),
        record("SMTP-OPEN-RELAY", mx2, "passed", "every relay form refused with 554", variant="25-plain-null-sender"),
        record("TLS-NO-SSL", mx2, "passed", "mx2.example.test:993 refuses SSLv2 and SSLv3"),
        record("API-VERSION", mx2, "error", "mx2.example.test:443: login refused (HTTP 401)"),
    ]
    run = {
        "suite_version": "9.9.9", "started": "2026-11-29T19:09:51Z", "finished": "2026-11-29T19:12:56Z",
        "duration_s": 185.2,
        "policy": {"name": "baseline", "path": "/home/auditor/private/policies/baseline.yaml",
                   "sha256": "0123456789abcdef"},
        "targets": [{"server": mx1, "ip": "192.0.2.1", "domain": "example.test", "api_url": "https://mx1.example.test"},
                    {"server": mx2, "ip": "192.0.2.2", "domain": "example.test", "api_url": None}],
        "resolver": "192.0.2.53:53", "intrusive": False,
        "options": {"api_insecure": True, "ca_file": CA_FILE, "waivers": "/srv/waivers.yaml",
                    "smtp_user": "auditor@example.test", "dkim_selectors": ["s1"], "tls_ports": [25, 993]},
        "collected": len(records), "recorded": len(records), "complete": True, "interrupted": None,
        "exit_status": 1,
    }
    document = build_document(run, records, True, SERVERS)
    document["changes"] = {  # as mailaudit.changes writes it (schema $defs/changes)
        "baseline": {"path": "/srv/nightly/2026-11-28.json", "started": "2026-11-28T02:00:00Z", "complete": True,
                     "policy": {"name": "baseline", "sha256": "0123456789abcdef"}},
        "comparable": False,
        "notes": ["the baseline ran under another policy (baseline 0000000000000000)"],
        "counts": {"new failure": 1, "new error": 0, "fixed": 1, "changed": 0, "new": 0, "gone": 0,
                   "still failing": 7, "still error": 3, "unchanged": 5},
        "items": [
            {"server": mx1, "requirement": "SMTP-OPEN-RELAY", "variant": "25-plain-bang-path",
             "change": "still failing", "outcome": "failed", "previous": "failed", "severity": "critical",
             "message": "relay variant bang-path: RCPT accepted"},
            {"server": mx2, "requirement": "TLS-NO-SSL", "variant": "", "change": "fixed", "outcome": "passed",
             "previous": "failed", "severity": "critical", "message": "refuses SSLv2 and SSLv3"},
            {"server": mx1, "requirement": "API-RELAY", "variant": "", "change": "new failure", "outcome": "failed",
             "previous": "passed", "severity": "critical", "message": f"Allow Relay is not Nobody: {HOSTILE_API}"},
        ],
    }
    document["waivers"] = {"expired": ["SMTP-AUTH-MATCH on *: expired 2026-01-31 (migration window (ticket 17))"],
                           "unused": []}
    return document
