"""The HTML dashboard (report/dashboard.py): its numbers come from the analyst views, every
text from the store is escaped and neutralised, and the page references nothing outside itself.
It is rendered in a real browser by tests/integration/test_dashboard_browser.py."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import dashboard_store as known
import pytest
from typer.testing import CliRunner

from patchfleet.cli import app
from patchfleet.report.dashboard import (
    DASHBOARD_FILE,
    Dashboard,
    load_dashboard,
    render_dashboard,
    write_dashboard,
)
from patchfleet.report.svg_charts import esc, line_chart
from patchfleet.store.query import ComplianceStore
from tasks.publish import dashboard_line

NOW = datetime(2024, 5, 3, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ComplianceStore:
    return ComplianceStore(known.build_store(tmp_path_factory.mktemp("dash") / "store"))


@pytest.fixture(scope="module")
def data(store: ComplianceStore) -> Dashboard:
    return load_dashboard(store, now=NOW)


@pytest.fixture(scope="module")
def page(data: Dashboard) -> str:
    return render_dashboard(data)


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text by element id of its section."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(page: str) -> Elements:
    parser = Elements()
    parser.feed(page)
    parser.close()
    return parser


def test_numbers_come_from_the_views(data: Dashboard) -> None:
    f = data.fleet
    assert (f.nodes, f.compliant, f.non_compliant, f.failed, f.compliant_pct,
            f.missing_patches) == tuple(known.FLEET.values())
    assert [(r.label, r.nodes, r.compliant, r.non_compliant, r.failed, r.compliant_pct)
            for r in data.by_os] == known.BY_OS
    assert [(r.label, r.nodes, r.compliant, r.non_compliant, r.failed, r.compliant_pct)
            for r in data.by_patch_group] == known.BY_GROUP
    assert [(d.isoformat(), *rest) for d, *rest in data.trend] == known.TREND
    assert [(p, n) for p, n, *_ in data.top_missing] == known.TOP_MISSING
    assert [(c, n) for c, n, _ in data.top_cves] == known.TOP_CVES
    assert list(data.time_to_patch) == known.TIME_TO_PATCH
    assert [(n, r) for n, _, _, r, _ in data.failed_nodes] == [
        (known.EVIL_FAILED, known.EVIL_REASON)]
    assert [n for n, *_ in data.noncompliant_nodes] == ["db-1", known.EVIL_NC]


def test_page_shows_the_numbers(page: str) -> None:
    cards = dict(re.findall(r'data-count="(\w+)">([^<]*)<', page))
    assert cards == {"nodes": "5", "compliant": "2", "non_compliant": "2", "failed": "1",
                     "pct": "50%", "missing": "4"}
    points = re.findall(r'data-day="([\d-]+)" data-value="([\d.]+)"', page)
    assert points == [("2024-05-01", "33.3"), ("2024-05-02", "50")]
    bars = re.findall(r'data-label="([^"]*)"><text[^>]*>[^<]*</text><rect[^>]*'
                      r'data-value="(\d+)"', page)
    assert ("curl", "2") in bars and ("CVE-2024-0002", "2") in bars
    assert "Important / Security" in page and ">24 h mean, p90 24 h<" in page
    assert "2024-05-02 10:00 UTC" not in page and "generated 2024-05-03 08:00 UTC" in page


def test_hostile_text_is_escaped_and_neutralised(page: str) -> None:
    for raw in known.HOSTILE:
        if any(c in raw for c in "<>\"'"):
            assert raw not in page, raw
    elements = parsed(page)
    assert {tag for tag, _ in elements.tags} <= {
        "html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "section", "div",
        "svg", "rect", "text", "g", "line", "path", "circle", "table", "thead", "tbody", "tr",
        "th", "td", "details", "summary"}
    text = "".join(elements.text)
    assert known.EVIL_FAILED in text and known.EVIL_REASON in text  # shown as text
    assert "'" + known.EVIL_GROUP in text and "'" + known.EVIL_NC in text
    assert "'" + known.EVIL_PACKAGE in text
    assert known.EVIL_GROUP not in text.replace("'" + known.EVIL_GROUP, "")
    for _, attrs in elements.tags:  # nothing runs, nothing is fetched
        assert not any(name.startswith("on") for name in attrs), attrs
        assert not {"src", "href", "action", "formaction", "srcset"} & set(attrs), attrs
    assert "<script" not in page.lower() and "url(" not in page
    assert "default-src 'none'" in html.unescape(page)


def test_esc() -> None:
    assert esc(None) == "\u2014"
    assert esc(-3) == "-3" and esc(2.5) == "2.5" and esc(24.0) == "24"  # numbers are numbers
    assert esc("=1+2") == "&#x27;=1+2"
    assert esc("\tx") == "&#x27;\tx"
    assert esc('a<b>"c"') == "a&lt;b&gt;&quot;c&quot;"


def test_line_chart_labels_thin_out_but_every_point_has_its_value() -> None:
    days = [(f"2024-01-{d:02d}", float(d)) for d in range(1, 31)]
    svg = line_chart(days, title="t")
    assert len(re.findall(r"<circle ", svg)) == 30
    assert len(re.findall(r'class="point-label"', svg)) < 30
    assert 'data-value="30"' in svg and ">30<" in svg  # the last point is labelled
    gap = line_chart([("a", 1.0), ("b", None), ("c", 3.0)], title="t")
    assert gap.count("<circle ") == 2 and gap.count("M") == 2  # a gap starts a new line


def test_empty_store(tmp_path: Path) -> None:
    with ComplianceStore(tmp_path) as empty:
        page = render_dashboard(load_dashboard(empty, now=NOW))
    assert "no runs yet" in page and "no patch is missing" in page and "no node failed" in page
    assert 'data-count="pct">n/a<' in page


def test_write_dashboard(store: ComplianceStore, tmp_path: Path) -> None:
    path = write_dashboard(store, tmp_path / "out", now=NOW)
    assert path == tmp_path / "out" / DASHBOARD_FILE
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert not [p for p in path.parent.iterdir() if p != path]  # atomic: no leftovers


def test_cli_report_html(store: ComplianceStore, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    result = CliRunner().invoke(app, ["report", "--store", str(store.root), "--out", str(out),
                                      "--html"])
    assert result.exit_code == 0, result.output
    assert f"wrote {out / DASHBOARD_FILE}" in result.stdout
    assert (out / "all-nodes.csv").is_file() and (out / DASHBOARD_FILE).is_file()
    assert 'data-count="nodes">5<' in (out / DASHBOARD_FILE).read_text(encoding="utf-8")
    plain = CliRunner().invoke(app, ["report", "--store", str(store.root), "--out",
                                     str(tmp_path / "plain")])
    assert plain.exit_code == 0 and not (tmp_path / "plain" / DASHBOARD_FILE).exists()


def test_cli_default_folder_is_the_one_runs_link(tmp_path: Path) -> None:
    store = known.build_store(tmp_path / "store")
    assert "not written yet" in dashboard_line(str(store))
    result = CliRunner().invoke(app, ["report", "--store", str(store), "--html"])
    assert result.exit_code == 0, result.output
    path = store / "reports" / "latest" / DASHBOARD_FILE
    assert f"wrote {path}" in result.stdout
    assert dashboard_line(str(store)).startswith(f"- fleet dashboard: `{path}` (written ")


def test_run_summary_links_the_fleet_dashboard(tmp_path: Path) -> None:
    store = tmp_path / "store"
    line = dashboard_line(str(store))
    path = store / "reports" / "latest" / DASHBOARD_FILE
    assert line == (f"- fleet dashboard: not written yet; `patchfleet report --html --store "
                    f"{store}` writes `{path}`\n")
    path.parent.mkdir(parents=True)
    path.write_text("<!DOCTYPE html>", encoding="utf-8")
    assert dashboard_line(str(store)).startswith(f"- fleet dashboard: `{path}` (written 20")
