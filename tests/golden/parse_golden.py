"""Parse every golden capture with patchfleet's parsers; write or check the expected parse.

Layout: ``tests/golden/<family>/<case>/<probe>.stdout|.stderr|.exit`` are what the real tool
printed (captured by ``testnodes/capture_golden.py`` or, for the ``*-host`` cases, on a real
Debian machine), and ``<probe>.parsed.json`` is what the parser made of it, reviewed by a person
when it changes. ``python tests/golden/parse_golden.py --write`` refreshes the .parsed.json files.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from patchfleet.parsers import apt, dpkg, os_release, reboot

GOLDEN = Path(__file__).resolve().parent


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {"|".join(k) if isinstance(k, tuple) else str(k): _jsonable(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "value") and not isinstance(value, str | int | float | bool):
        return value.value
    return value


def _read(case: Path, probe: str) -> tuple[str, str, int]:
    return (
        (case / f"{probe}.stdout").read_text(encoding="utf-8"),
        (case / f"{probe}.stderr").read_text(encoding="utf-8"),
        int((case / f"{probe}.exit").read_text().strip() or "0"),
    )


def _apt_parsers(case: Path) -> dict[str, Callable[[], Any]]:
    def policy_installed() -> Any:
        releases = apt.parse_policy_releases(_read(case, "apt-cache-policy")[0])
        return apt.parse_policy_packages(_read(case, "apt-cache-policy-installed")[0], releases)

    return {
        "os-release": lambda: os_release.os_info(
            os_release.parse_os_release(_read(case, "os-release")[0])
        ),
        "apt-reboot": lambda: reboot.parse_apt_reboot(_read(case, "apt-reboot")[0]),
        "dpkg-query": lambda: dpkg.parse_dpkg_query(_read(case, "dpkg-query")[0]),
        "apt-cache-policy": lambda: apt.parse_policy_releases(_read(case, "apt-cache-policy")[0]),
        "apt-cache-policy-installed": policy_installed,
        "apt-get-simulate": lambda: apt.parse_simulate(_read(case, "apt-get-simulate")[0]),
        "apt-cache-show": lambda: apt.parse_apt_show(_read(case, "apt-cache-show")[0]),
        "apt-get-update": lambda: apt.parse_update(*reversed_update(case)),
    }


def reversed_update(case: Path) -> tuple[int, str, str]:
    stdout, stderr, code = _read(case, "apt-get-update")
    return code, stdout, stderr


def cases() -> list[Path]:
    return sorted(p for p in GOLDEN.glob("apt/*") if p.is_dir())


def parse_case(case: Path) -> dict[str, Any]:
    """probe name -> JSON-able parse, for every probe captured in the case folder."""
    out: dict[str, Any] = {}
    for probe, parse in _apt_parsers(case).items():
        if (case / f"{probe}.stdout").exists():
            out[probe] = _jsonable(parse())
    return out


def main(argv: list[str]) -> int:
    write = "--write" in argv
    changed = 0
    for case in cases():
        for probe, parsed in parse_case(case).items():
            path = case / f"{probe}.parsed.json"
            text = json.dumps(parsed, indent=1, sort_keys=True) + "\n"
            if not path.exists() or path.read_text() != text:
                changed += 1
                if write:
                    path.write_text(text)
                print(("wrote " if write else "differs: ") + str(path))
    return 1 if changed and not write else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
