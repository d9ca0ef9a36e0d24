"""Headless Chromium for tests: open a local page without network, read back the DOM it built
and its console (Debian's ``chromium``; scripts/test.sh installs it as root)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

SCREENSHOT = Path("/tmp/patchfleet-dashboard.png")
CONSOLE = re.compile(r":CONSOLE[:(]|Uncaught|Content Security Policy")


@dataclass(frozen=True)
class Rendered:
    dom: str
    log: str


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("headless Chromium is needed: apt-get install chromium (scripts/test.sh "
                    "installs it as root)")
    return found


def browse(page: Path, profile: Path, *extra: str) -> Rendered:
    """Open ``page`` in headless Chromium without network; the DOM it built and its log."""
    argv = [chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
            f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
            "--enable-logging=stderr", "--v=0", *extra, page.resolve().as_uri()]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return Rendered(done.stdout, done.stderr)


def console_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if CONSOLE.search(line)]
