"""The pure core stays pure: domain/, parsers/ and managers/ import no I/O library.

Runs in a fresh interpreter so modules imported by other tests don't mask a violation.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import patchfleet

FORBIDDEN = ("prefect", "asyncssh", "boto3", "botocore", "duckdb", "pyarrow", "pandas")
SRC = Path(patchfleet.__file__).parent


def _pure_modules() -> list[str]:
    mods = []
    for pkg in ("domain", "parsers", "managers"):
        for info in pkgutil.iter_modules([str(SRC / pkg)]):
            mods.append(f"patchfleet.{pkg}.{info.name}")
    return mods


def test_pure_modules_exist() -> None:
    mods = _pure_modules()
    assert "patchfleet.domain.evaluate" in mods and "patchfleet.parsers.apt" in mods


def test_pure_core_imports_no_io_library() -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {_pure_modules()!r}: importlib.import_module(m)\n"
        f"bad = sorted(k for k in sys.modules if k.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "", f"pure modules pulled in: {out}"
