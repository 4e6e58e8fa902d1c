"""The auditor's report, rendered offline from a synthetic results document (no browser, no lab)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from mailaudit.report import default_report_path, write_audit_report
from mailaudit.report.__main__ import main as report_cli
from mailaudit.report.model import build_view
from selftests.report.documents import (
    API_DOWN,
    HOSTILE,
    HOSTILE_API,
    HOSTILE_BANNER,
    HOSTILE_TXT,
    SERVERS,
    synthetic_document,
)

OUTCOMES = ("failed", "error", "inconclusive", "waived", "skipped", "passed")


@pytest.fixture
def rendered(tmp_path: Path) -> tuple[dict, str, Path]:
    """The synthetic document, its report's HTML and the report's path (in a folder of its own)."""
    document = synthetic_document(tmp_path)
    path = tmp_path / "out" / "deeper" / "audit.html"
    write_audit_report(document, path, tmp_path)
    return document, path.read_text(encoding="utf-8"), path


def _section(page: str, server: str) -> str:
    """The HTML of one server's requirements section."""
    start = page.index(f'<section class="server" id="server-{server}"')
    end = page.find('<section class="server"', start + 10)
    return page[start:end if end > 0 else len(page)]


def _entry(page: str, requirement: str, server: str = SERVERS[0]) -> str:
    """The HTML of one requirement's entry (a finding article)."""
    start = page.index(f'id="{server}--{requirement}"')
    return page[start:page.index("</article>", start)]


def test_failed_requirements_are_ranked_by_severity_then_family(tmp_path):
    """Criticals first (SMTP-OPEN-RELAY ahead of API-RELAY: SMTP comes before the API), then high,
    medium, low by rank, not by alphabet; within a severity, family then the catalog's order."""
    view = build_view(synthetic_document(tmp_path), tmp_path, tmp_path)
    assert [e.requirement for e in view.servers[0].failed] == [
        "SMTP-OPEN-RELAY", "API-RELAY", "SMTP-AUTH-MATCH", "TLS-NO-LEGACY-TLS", "TLS-CERT-TRUST", "DNS-SPF-RECORD",
        "SMTP-HARVEST-DEFENSE", "SMTP-BANNER-HOSTNAME", "SMTP-BANNER-DISCLOSURE"]


def test_the_html_keeps_that_order_and_rolls_variants_up(rendered):
    """One entry per requirement, in ranked order; several verdicts become '3 of 3 variants failed'
    with every variant listed in a collapsible box."""
    _, page, _ = rendered
    section = _section(page, SERVERS[0])
    failed_part = section[:section.index(f'<h3 id="server-{SERVERS[0]}-error"')]
    ids = re.findall(r'<article class="entry o-failed[^"]*" id="[^"]*--([A-Z0-9-]+)"', failed_part)
    assert ids[:2] == ["SMTP-OPEN-RELAY", "API-RELAY"] and len(ids) == len(set(ids)) == 9
    assert "3 of 3 variants failed" in section and "1 of 2 variants failed, 1 passed" in section
    relay = _entry(section, "SMTP-OPEN-RELAY")
    assert relay.count('<details class="variants">') == 1
    assert all(f"25-plain-{form}" in relay for form in ("null-sender", "percent-hack", "bang-path"))


def test_each_finding_says_why_expected_observed_remediation_and_sources(rendered):
    """A finding carries the catalog's why, expected, the observation, both remediation parts
    (SmarterMail's web interface and the generic fix) and its sources, with RFCs linked."""
    _, page, _ = rendered
    relay = _entry(page, "SMTP-OPEN-RELAY")
    for label in ("Why it matters", "Expected", "Observed", "Remediation", "Sources"):
        assert f"<dt>{label}</dt>" in relay
    assert "An open relay lets anyone send spam" in relay
    assert "SmarterMail (web interface):</b> Settings &gt; Protocols &gt; SMTP In &gt; Allow Relay = Nobody" in relay
    assert "Generic fix:</b> Relay only for authenticated users" in relay
    assert 'href="https://www.rfc-editor.org/rfc/rfc5321#section-3.6"' in relay


def test_policy_leaves_basis_and_waivers_are_shown(rendered):
    """The policy leaf that decided (value and cited source), an API verdict's basis, a waiver and a
    lapsed waiver are all on the page."""
    _, page, _ = rendered
    assert "<code>smtp.harvest_attempts</code> = <code>30</code> — source: guide (IDS Bad SMTP Sessions)" in page
    assert "<dt>Basis</dt>" in page and "confirmed field-map entry smtpInSettings.allowRelay" in page
    assert "come from no published source" not in page  # only said of assumed entries
    assert "<dt>Waiver</dt>" in page and "renewal booked (expires 2099-12-31" in page
    assert "<dt>Lapsed waiver</dt>" in page and "migration window (ticket 17)" in page


def test_an_assumed_basis_is_flagged(tmp_path):
    """An API verdict resting on assumed field-map entries says that the setting needs confirming."""
    document = synthetic_document(tmp_path)
    next(r for r in document["results"] if r["requirement"] == "API-RELAY")["basis"] = "assumed: field allowRelay"
    path = tmp_path / "audit.html"
    write_audit_report(document, path, tmp_path)
    page = path.read_text(encoding="utf-8")
    assert "assumed: field allowRelay" in page and "come from no published source" in page


def test_errors_with_one_cause_are_grouped(rendered):
    """Three API requirements broken by one cause are one group: the cause once, the requirements
    listed under it."""
    document, page, path = rendered
    section = _section(page, SERVERS[0])
    assert "3 requirements could not be checked" in section
    assert section.count(html.escape(API_DOWN, quote=False)) == 1
    view = build_view(document, path.parent, path.parent)
    (group,) = view.servers[0].errors
    assert group.cause == API_DOWN and [e.requirement for e in group.entries] == [
        "API-VERSION", "API-AUTH-MATCH", "API-CATCHALL"]


def test_every_server_has_its_own_verdict_and_counts(rendered):
    """A two-server run shows each server's verdict and per-requirement counts separately, from the
    document's own per-server summaries."""
    document, page, _ = rendered
    summaries = re.findall(r'<section class="server-summary v-([a-z-]+)"', page)
    assert summaries == ["not-compliant", "undecided"]
    for summary in document["servers"]:
        block = page[page.index(f'id="server-{summary["server"]}-h"'):]
        block = block[:block.index("</section>")]
        for outcome in OUTCOMES:
            count = summary["requirements"][outcome]
            assert re.search(rf'o-{outcome}">{outcome}</span></th><td class="num">{count}</td>', block), outcome


def test_six_outcomes_have_six_colours(rendered):
    """Each outcome has its own colour in the stylesheet, and each appears as its own label."""
    _, page, _ = rendered
    colours = {o: re.search(rf"--{o}: (#[0-9a-f]{{6}})", page).group(1) for o in OUTCOMES}
    assert len(set(colours.values())) == 6
    section = _section(page, SERVERS[0])
    for outcome in OUTCOMES:
        assert f'<span class="pill o-{outcome}">{outcome}</span>' in section


def test_evidence_is_shown_once_and_large_evidence_is_linked_relatively(rendered):
    """Small evidence is inline where it is first read and pointed to afterwards; large evidence is
    a relative link (from the report's folder) to an existing file; no data: URLs."""
    _, page, path = rendered
    assert page.count(html.escape("* connected to 192.0.2.1:25", quote=False)) == 1
    assert "shown earlier in this report" in page
    links = re.findall(r'href="([^"#][^"]*\.txt)"', page)
    assert links and all(not link.startswith(("/", "data:", "file:")) for link in links)
    assert all((path.parent / link).resolve().is_file() for link in links)
    assert "../../results-evidence/" in links[0]
    assert "data:" not in page


def test_self_contained_mode_links_no_file(tmp_path):
    """With self_contained, the page links no evidence file, keeps small evidence inline and says
    that larger evidence is not included."""
    document = synthetic_document(tmp_path)
    path = tmp_path / "audit.html"
    write_audit_report(document, path, tmp_path, self_contained=True)
    page = path.read_text(encoding="utf-8")
    assert not re.search(r'href="[^"#][^"]*\.txt"', page)
    assert "Self-contained report" in page and "not in this self-contained report" in page
    assert html.escape("C: RCPT TO:<bang-path>", quote=False) in page


def test_changes_since_the_baseline_come_first(rendered):
    """A document's changes come before the per-server requirements: every count, the caveats, and
    one row per news item (new failures first); steady items (still failing) are only counted."""
    _, page, _ = rendered
    start = page.index('<section class="changes"')
    assert start < page.index('<section class="server"')
    changes = page[start:page.index("</section>", start)]
    assert "of 2026-11-28 02:00:00 UTC" in changes and "2026-11-28.json" in changes and "/srv/" not in changes
    assert "<b>1</b> new failure · <b>1</b> fixed · <b>7</b> still failing · <b>3</b> still error" in changes
    assert "Caution: the baseline ran under another policy" in changes
    rows = re.findall(r"<tr><td><b>([a-z ]+)</b>", changes)
    assert rows == ["new failure", "fixed"]


def test_waivers_to_review_are_listed(rendered):
    """Expired and unused waivers of the document are shown for review."""
    _, page, _ = rendered
    assert "Waivers to review" in page and "expired 2026-01-31 (migration window (ticket 17))" in page


def test_no_machine_paths_reach_the_report(rendered):
    """Option paths are shown by file name only, also where a message or evidence repeats them; the
    auditing machine's folders never appear."""
    _, page, _ = rendered
    assert "/home/auditor" not in page and "/srv/" not in page
    assert "baseline.yaml" in page and "NOT verified (--api-insecure)" in page
    assert "993: not trusted by ca.pem" in page and "trust store: ca.pem" in page


def test_server_text_is_escaped(rendered):
    """A hostile banner, TXT record and API value appear only escaped: never as markup."""
    _, page, _ = rendered
    for hostile in (HOSTILE, HOSTILE_BANNER, HOSTILE_TXT, HOSTILE_API):
        assert hostile not in page
    assert page.count("&lt;script&gt;document.title=") >= 4  # banner, TXT, API value, basis (+ evidence)
    assert page.count("<script>") == 1  # the report's own
    assert "<img" not in page


def test_an_incomplete_run_says_so(tmp_path):
    """A document marked incomplete gets a banner with the reason and the verdicts recorded."""
    document = synthetic_document(tmp_path)
    document["complete"] = False
    document["run"] |= {"interrupted": "interrupted (Ctrl-C or SIGTERM)", "collected": 40, "recorded": 21}
    path = tmp_path / "audit.html"
    write_audit_report(document, path, tmp_path)
    page = path.read_text(encoding="utf-8")
    assert "Incomplete run." in page and "21 of 40 verdicts were recorded" in page


def test_records_without_catalog_words_fall_back_to_the_catalog(tmp_path):
    """Records of an older document (without why/expected/remediation parts) still show them."""
    document = synthetic_document(tmp_path)
    for record in document["results"]:
        for key in ("why", "expected", "remediation_smartermail", "remediation_generic"):
            record.pop(key)
    path = tmp_path / "audit.html"
    write_audit_report(document, path, tmp_path)
    assert "An open relay lets anyone send spam" in path.read_text(encoding="utf-8")


def test_the_cli_renders_a_results_file(tmp_path, capsys):
    """``python -m mailaudit.report RESULTS.json`` writes <stem>-audit.html beside it; a file that is
    not a results document is refused with one line and exit status 2."""
    results = tmp_path / "results.json"
    results.write_text(json.dumps(synthetic_document(tmp_path)), encoding="utf-8")
    assert report_cli([str(results)]) == 0
    assert default_report_path(results).read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    bad = tmp_path / "other.json"
    bad.write_text("{}", encoding="utf-8")
    assert report_cli([str(bad), "-o", str(tmp_path / "x.html")]) == 2
    assert "is not a mailaudit-results/1 document" in capsys.readouterr().err
