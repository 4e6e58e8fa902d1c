"""The auditor's report in a real browser: Debian's Chromium, headless, with JavaScript on and off,
printed to PDF and checked with poppler. The lab reports come from the session's lab audits."""

from __future__ import annotations

import html
import re
import subprocess
from pathlib import Path

import pytest

from mailaudit.report import write_audit_report
from selftests.report.browser import Browser
from selftests.report.conftest import LabReport, pdf_text
from selftests.report.documents import HOSTILE, SCRIPT, synthetic_document

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "audit-report-weak.png"
FIRST_SCREEN = (1280, 900)
A4_POINTS = (595, 842)
WEAK_HTML_MAX, WEAK_TOTAL_MAX, HARDENED_HTML_MAX = 500_000, 1_500_000, 300_000


def _text(value: str) -> str:
    """How text appears in serialized DOM (``&``, ``<``, ``>`` escaped)."""
    return html.escape(value, quote=False)


def _failed_requirements(report: LabReport) -> dict[str, dict]:
    """Requirement ID -> one of its failed records."""
    return {r["requirement"]: r for r in report.failed_records}


@pytest.fixture(params=["weak", "hardened"])
def lab(request) -> LabReport:
    """Each lab server's report in turn."""
    return request.getfixturevalue(f"{request.param}_report")


def test_hostile_server_text_stays_text_in_chromium(tmp_path):
    """With scripts enabled, a banner, a TXT record and an API value holding <script>, an <img
    onerror> and </td> render as text: no injected element exists and nothing of theirs ran."""
    document = synthetic_document(tmp_path)
    path = tmp_path / "audit.html"
    write_audit_report(document, path, tmp_path)
    with Browser() as browser:
        browser.open(path)
        dom = browser.dom()
        assert browser.count("img") == 0
        assert browser.count("script") == 1  # the report's own filters
        assert browser.count("table.variant-table td table, pre *") == 0
        assert browser.count("[data-pwned]") == 0  # the onerror handler never ran
    assert re.search(r"<title>([^<]*)</title>", dom).group(1).startswith("Mail server audit")  # nor the script
    assert dom.count(_text(SCRIPT)) >= 4 and _text(HOSTILE) in dom


def test_lab_reports_read_without_javascript(lab):
    """With JavaScript off, the DOM shows each server's verdict, its per-requirement counts and every
    failed requirement's title and both remediation parts; the filter bar stays hidden."""
    with Browser(scripts=False) as browser:
        browser.open(lab.html)
        dom = browser.dom()
        assert browser.count("#toolbar[hidden]") == 1
    for summary in lab.run.document["servers"]:
        assert re.search(r'<p class="verdict v-[a-z-]+"><span class="word">' + re.escape(summary["verdict"]), dom,
                         re.IGNORECASE)
        for outcome, count in summary["requirements"].items():
            if outcome != "total":
                assert f'o-{outcome}">{outcome}</span></th><td class="num">{count}</td>' in dom
    for rid, record in _failed_requirements(lab).items():
        assert _text(record["title"]) in dom, rid
        for part in ("remediation_smartermail", "remediation_generic"):
            assert _text(record.get(part) or "") in dom, (rid, part)


def test_no_horizontal_scrolling_at_1280_px(lab):
    """At 1280 px the page is no wider than the window, with scripts on and off (long lines wrap)."""
    for scripts in (True, False):
        with Browser(1280, 900, scripts=scripts) as browser:
            browser.open(lab.html)
            metrics = browser.metrics()
        assert metrics.content_width <= metrics.viewport_width, (scripts, metrics)


def test_the_weak_reports_first_screen_has_the_verdict_and_the_run(weak_report):
    """The first screen (1280×900) holds the verdict, the counts by outcome, severity and family and
    the run's metadata; the screenshot for the README is written to docs/."""
    with Browser(*FIRST_SCREEN) as browser:
        browser.open(weak_report.html)
        for selector in (".verdict", ".summary-grid", "dl.meta"):
            assert browser.bottom(selector) <= FIRST_SCREEN[1], selector
        browser.screenshot(SCREENSHOT)
        dom = browser.dom()
    assert '<span class="word">Not compliant</span>' in dom
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_open_relay_leads_the_weak_reports_findings(weak_report):
    """The first finding of the weak report is SMTP-OPEN-RELAY (critical), with its remediation and
    all its variants rolled up into one entry."""
    with Browser(scripts=False) as browser:
        browser.open(weak_report.html)
        dom = browser.dom()
    first = re.search(r'<article class="entry o-failed s-(\w+)" id="[^"]*--([A-Z0-9-]+)"', dom)
    assert first and first.groups() == ("critical", "SMTP-OPEN-RELAY")
    relay = [r for r in weak_report.run.records if r["requirement"] == "SMTP-OPEN-RELAY"]
    failed = sum(r["outcome"] == "failed" for r in relay)
    assert f"{failed} of {len(relay)} variants failed" in dom
    assert len(re.findall(r'<article [^>]*id="[^"]*--SMTP-OPEN-RELAY"', dom)) == 1


def test_the_weak_report_prints_on_a4_portrait_without_clipping(weak_report, weak_pdf, tmp_path):
    """Printed by Chromium, every page is A4 portrait; turned into PNG pages, nothing reaches the
    right margin (nothing is cut at the page edge); every failed requirement's title and generic
    fix, the variants and the evidence inside collapsed boxes are in the printed text."""
    count = int(re.search(r"^Pages: +(\d+)", _pdfinfo(weak_pdf), re.M).group(1))
    sizes = re.findall(r"^Page +\d+ size: +([\d.]+) x ([\d.]+) pts", _pdfinfo(weak_pdf, "-f", "1", "-l", str(count)),
                       re.M)
    assert len(sizes) > 1
    assert {(round(float(w)), round(float(h))) for w, h in sizes} == {A4_POINTS}
    subprocess.run(["pdftoppm", "-r", "30", "-gray", str(weak_pdf), str(tmp_path / "page")], check=True, timeout=120)
    pages = sorted(tmp_path.glob("page-*.pgm"))
    assert len(pages) == len(sizes)
    for page in pages:
        assert _right_margin_is_blank(page), page.name
    printed = pdf_text(weak_pdf)
    for rid, record in _failed_requirements(weak_report).items():
        assert " ".join(record["title"].split()) in printed, rid
        assert " ".join(record["remediation_generic"].split()) in printed, rid
    relay = [r for r in weak_report.run.records if r["requirement"] == "SMTP-OPEN-RELAY"]
    assert max(r["variant"] for r in relay) in printed  # a variant inside a collapsed list
    transcript = next(e["text"] for r in relay for e in r["evidence"] if e.get("text"))
    assert " ".join(transcript.splitlines()[-1].split()) in printed  # a collapsed evidence box


def _pdfinfo(path: Path, *args: str) -> str:
    return subprocess.run(["pdfinfo", *args, str(path)], capture_output=True, text=True, check=True,
                          timeout=60).stdout


def _right_margin_is_blank(pgm: Path, strip_px: int = 8) -> bool:
    """Whether the rightmost ``strip_px`` columns of a binary greyscale page image are white (at
    30 dpi 8 px is 6.8 mm, inside the report's 12 mm margin)."""
    data = pgm.read_bytes()
    header = re.match(rb"P5\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    assert header, "not a binary PGM"
    width, height = int(header.group(1)), int(header.group(2))
    pixels = data[header.end():]
    return all(min(pixels[row * width + width - strip_px:(row + 1) * width]) >= 245 for row in range(height))


def test_lab_reports_stay_inside_the_size_budget(weak_report, hardened_report):
    """Weak: the HTML at most 500 KB and with its evidence folder at most 1.5 MB; hardened: the
    HTML at most 300 KB."""
    weak_html = weak_report.html.stat().st_size
    evidence = weak_report.run.results_json.parent / weak_report.run.document["run"]["outputs"]["evidence_dir"]
    evidence_bytes = sum(p.stat().st_size for p in evidence.rglob("*") if p.is_file())
    assert weak_html <= WEAK_HTML_MAX, weak_html
    assert weak_html + evidence_bytes <= WEAK_TOTAL_MAX, (weak_html, evidence_bytes)
    assert hardened_report.html.stat().st_size <= HARDENED_HTML_MAX


def test_lab_reports_hold_no_machine_paths_or_warnings(lab):
    """No folder of the auditing machine (the checkout, the output folder), no Python warning and
    no traceback in the report."""
    page = lab.html.read_text(encoding="utf-8")
    for leak in (str(REPO), str(lab.run.out_dir), "/tmp/", "site-packages", "Traceback", "Warning:"):
        assert leak not in page, leak


def test_the_weak_banners_markup_stays_text(weak_report):
    """The weak server's greeting carries a literal <b>lab</b> (lab/postfix/weak/main.cf): in the
    rendered report it is text, never a bold element."""
    with Browser() as browser:
        browser.open(weak_report.html)
        dom = browser.dom()
        assert browser.count("pre b, p.msg b, td b") == 0
    assert _text("<b>lab</b>") in dom


def test_evidence_links_open_in_chromium(weak_report):
    """A linked evidence file opens in Chromium from the report's relative link."""
    page = weak_report.html.read_text(encoding="utf-8")
    href = re.search(r'<a class="file" href="([^"#]+\.txt)">', page).group(1)
    target = (weak_report.html.parent / href).resolve()
    with Browser() as browser:
        browser.open(target)
        dom = browser.dom()
    first_line = target.read_text(encoding="utf-8").splitlines()[0]
    assert _text(first_line) in dom


def test_the_audit_writes_its_auditors_report(weak_report):
    """The plugin writes the auditor's report beside the results JSON (<results stem>-audit.html)."""
    assert weak_report.written_by_plugin, (
        f"no {weak_report.html.name} beside {weak_report.run.results_json.name}: the reporter must call "
        "mailaudit.report.write_audit_report (this self-test rendered it itself)")


def test_filters_and_search_only_hide_what_the_page_already_shows(tmp_path):
    """With JavaScript the filter bar appears: unticking an outcome hides its entries, the search
    keeps only matching ones, and the page holds the same entries as without JavaScript."""
    document = synthetic_document(tmp_path)
    path = tmp_path / "audit.html"
    write_audit_report(document, path, tmp_path)
    with Browser(scripts=False) as browser:
        browser.open(path)
        without_js = browser.count("[data-filter-item]")
    with Browser() as browser:
        browser.open(path)
        assert browser.count("#toolbar:not([hidden])") == 1
        assert browser.count("[data-filter-item]") == without_js
        visible = "document.querySelectorAll('[data-filter-item]:not(.filtered-out)').length"
        assert browser.evaluate(visible) == without_js
        browser.evaluate("document.querySelector('#toolbar input[data-outcome=failed]').click()")
        failed = "[data-filter-item][data-outcome=failed]"
        assert browser.count(f"{failed}.filtered-out") == browser.count(failed) > 0
        assert browser.count("[data-filter-item][data-outcome=passed].filtered-out") == 0
        browser.evaluate("(() => { const box = document.querySelector('#toolbar input[type=search]');"
                         " box.value = 'SMTP-CATCHALL'; box.dispatchEvent(new Event('input')); })()")
        assert browser.evaluate(visible) == 1  # the inconclusive SMTP-CATCHALL entry
