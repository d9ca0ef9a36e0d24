"""The HTML dashboard in a real browser: headless Chromium (Debian's ``chromium``, which
scripts/test.sh installs) opens the page written by ``patchfleet report --html`` from a
file:// URL with every host name unresolvable (the page must need no network), and the test
reads back the DOM Chromium built, its console and a screenshot.

The store is tests/cases/dashboard_store.py: known answers and hostile text (node ids, a
patch group, a failure reason and a package name carrying markup and formula starts). The
screenshot is kept as a test artifact: under pytest's tmp dir and copied to SCREENSHOT.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import dashboard_store as known
import pytest
from browser import SCREENSHOT, Rendered, browse, console_lines
from typer.testing import CliRunner

from patchfleet.cli import app
from patchfleet.report.dashboard import DASHBOARD_FILE


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("dashboard")
    store = known.build_store(tmp / "store")
    result = CliRunner().invoke(app, ["report", "--store", str(store), "--out",
                                      str(tmp / "reports"), "--html"])
    assert result.exit_code == 0, result.output
    return tmp / "reports" / DASHBOARD_FILE


@pytest.fixture(scope="module")
def rendered(dashboard: Path) -> Rendered:
    return browse(dashboard, dashboard.parent.parent / "profile", "--dump-dom")


def test_console_lines_are_caught(tmp_path: Path) -> None:
    """The console check below can fail: a script error on a page is seen in the log."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><p>x</p><script>console.error('boom'); nope();</script>",
                   encoding="utf-8")
    lines = console_lines(browse(bad, tmp_path / "profile", "--dump-dom").log)
    assert any("boom" in line for line in lines) and any("Uncaught" in line for line in lines)


def test_the_page_renders_the_known_numbers(rendered: Rendered) -> None:
    dom = rendered.dom
    assert "<h1>patchfleet compliance dashboard</h1>" in dom
    cards = dict(re.findall(r'data-count="(\w+)">([^<]*)<', dom))
    assert cards == {"nodes": "5", "compliant": "2", "non_compliant": "2", "failed": "1",
                     "pct": "50%", "missing": "4"}
    assert re.findall(r'data-day="([\d-]+)" data-value="([\d.]+)"', dom) == [
        ("2024-05-01", "33.3"), ("2024-05-02", "50")]
    for label, nodes in [*known.TOP_MISSING, *known.TOP_CVES]:
        if label.isascii() and label.replace("-", "").isalnum():
            assert re.search(rf'data-label="{label}">.*?data-value="{nodes}"', dom), label
    section = dom[dom.index('id="by-os"'):dom.index('id="trend"')]
    for os_name, nodes, compliant, non_compliant, failed, _ in known.BY_OS:
        assert f"{os_name}</text>" in section
        assert f">{compliant} / {non_compliant} / {failed}</text>" in section
        assert f"<td>{os_name}</td><td class=\"num\">{nodes}</td>" in section
    assert '<td class="num">24</td><td class="num">24</td>' in dom  # time to patch, hours


def test_hostile_text_stays_text(rendered: Rendered) -> None:
    dom = rendered.dom
    assert "<script" not in dom and "<img" not in dom and "<b>" not in dom and "<i>" not in dom
    assert "&lt;script&gt;alert('node')&lt;/script&gt;" in dom
    assert "&lt;img src=x onerror=alert(2)&gt; AUTH_FAILED" in dom
    assert "'=HYPERLINK(\"http://evil.example/x\")" in dom and "'-2+3" in dom
    assert "'@pkg&lt;i&gt;" in dom


def test_no_console_errors(rendered: Rendered) -> None:
    assert console_lines(rendered.log) == []


def test_screenshot_is_kept(dashboard: Path) -> None:
    shot = dashboard.parent / "dashboard.png"
    log = browse(dashboard, dashboard.parent.parent / "profile-shot",
                 f"--screenshot={shot}", "--window-size=1280,2000",
                 "--hide-scrollbars").log
    assert console_lines(log) == []
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000
    assert int.from_bytes(data[16:20], "big") == 1280  # IHDR width
    shutil.copyfile(shot, SCREENSHOT)
    print(f"dashboard screenshot: {shot} (copied to {SCREENSHOT})")
