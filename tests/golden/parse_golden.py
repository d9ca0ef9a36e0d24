"""Parse every golden capture with patchfleet's parsers; write or check the expected parse.

Layout: ``tests/golden/<family>/<case>/<probe>.stdout|.stderr|.exit`` are what the real tool
printed (captured by ``testnodes/capture_golden.py`` or, for the ``*-host`` cases, on a real
Debian machine), and ``<probe>.parsed.json`` is what the parser made of it, reviewed by a person
when it changes. ``python tests/golden/parse_golden.py --write`` refreshes the .parsed.json files.

Families: ``apt``, ``dnf`` and ``zypper``. A probe that exited with a status its command does not
accept (a held lock, a broken repository) is recorded as ``{"exit": N, "error": ...}`` with the
error the collector raises for it; a parser that refuses its input as ``{"error": ...}``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from patchfleet.managers import probes

from patchfleet.managers import collect_rpm
from patchfleet.errors import NodeError
from patchfleet.parsers import apt, dnf, dpkg, os_release, reboot, rpm, updateinfo, zypper
from patchfleet.transport.base import Command, CommandResult

GOLDEN = Path(__file__).resolve().parent


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
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


def _os(case: Path) -> Any:
    return os_release.os_info(os_release.parse_os_release(_read(case, "os-release")[0]))


def _boot_id(case: Path) -> str:
    return dnf.parse_boot(_read(case, "rpm-boot")[0]).boot_id


def _installed(case: Path) -> Any:
    return rpm.parse_rpm_query(_read(case, "rpm-query")[0])


def _dnf_parsers(case: Path) -> dict[str, Callable[[], Any]]:
    def out(probe: str) -> str:
        return _read(case, probe)[0]

    def needs_restarting() -> Any:
        stdout, _, code = _read(case, "dnf-needs-restarting")
        return dnf.parse_needs_restarting(code, stdout, _boot_id(case))

    def makecache() -> Any:
        stdout, stderr, code = _read(case, "dnf-makecache")
        return dnf.parse_makecache(code, stdout, stderr)

    return {
        "os-release": lambda: _os(case),
        "rpm-boot": lambda: dnf.parse_boot(out("rpm-boot")),
        "rpm-query": lambda: _installed(case),
        "dnf-makecache": makecache,
        "dnf-needs-restarting": needs_restarting,
        "dnf-repoquery-upgrades": lambda: dnf.parse_upgrades(out("dnf-repoquery-upgrades"),
                                                             _installed(case)),
        "dnf-updateinfo-list": lambda: dnf.parse_updateinfo_list(out("dnf-updateinfo-list")),
        "dnf-updateinfo-info": lambda: dnf.parse_updateinfo_info(out("dnf-updateinfo-info")),
        "dnf-updateinfo-xml": lambda: updateinfo.parse_dump(out("dnf-updateinfo-xml"),
                                                            "dnf-updateinfo-xml"),
    }


def _zypper_parsers(case: Path) -> dict[str, Callable[[], Any]]:
    def checked(probe: str, parse: Callable[[str], Any]) -> Callable[[], Any]:
        def run() -> Any:
            stdout, stderr, code = _read(case, probe)
            _, warnings = zypper.check_exit(probe, code, stdout, stderr)
            parsed = parse(stdout)
            return {"parsed": parsed, "warnings": warnings} if warnings else parsed
        return run

    def refresh() -> Any:
        stdout, stderr, code = _read(case, "zypper-refresh")
        return zypper.parse_refresh(code, stdout, stderr)

    def needs_rebooting() -> Any:
        stdout, stderr, code = _read(case, "zypper-needs-rebooting")
        zypper.check_exit("zypper-needs-rebooting", code, stdout, stderr)
        return zypper.parse_needs_rebooting(code, stdout, _boot_id(case))

    return {
        "os-release": lambda: _os(case),
        "rpm-boot": lambda: dnf.parse_boot(_read(case, "rpm-boot")[0]),
        "rpm-query": lambda: _installed(case),
        "zypper-refresh": refresh,
        "zypper-list-updates": checked("zypper-list-updates", zypper.parse_list_updates),
        "zypper-list-patches": checked("zypper-list-patches", zypper.parse_list_patches),
        "zypper-patch-info": checked("zypper-patch-info", zypper.parse_patch_info),
        "zypper-updateinfo": lambda: updateinfo.parse_dump(_read(case, "zypper-updateinfo")[0],
                                                           "zypper-updateinfo"),
        "zypper-needs-rebooting": needs_rebooting,
    }


_PARSERS: dict[str, Callable[[Path], dict[str, Callable[[], Any]]]] = {
    "apt": _apt_parsers,
    "dnf": _dnf_parsers,
    "zypper": _zypper_parsers,
}
# Refreshes and zypper commands judge their own exit codes (a failed refresh is a warning,
# zypper's 7/102/106 mean something); for the other probes the command's ok_exit decides.
_OWN_EXIT_CHECK = frozenset({"apt-get-update", "dnf-makecache", "zypper-refresh"})


def _commands() -> dict[str, Command]:
    found = {c.name: c for c in vars(probes).values() if isinstance(c, Command) and c.name}
    found["zypper-patch-info"] = probes.zypper_patch_info(["x"])
    found["apt-cache-show"] = Command(("apt-cache", "show"), name="apt-cache-show")
    found["apt-get-update"] = probes.apt_update()
    return found


def cases() -> list[Path]:
    return sorted(p for family in _PARSERS for p in GOLDEN.glob(f"{family}/*") if p.is_dir())


def parse_case(case: Path) -> dict[str, Any]:
    """probe name -> JSON-able parse, for every probe captured in the case folder."""
    commands = _commands()
    out: dict[str, Any] = {}
    for probe, parse in _PARSERS[case.parent.name](case).items():
        if not (case / f"{probe}.stdout").exists():
            continue
        stdout, stderr, code = _read(case, probe)
        command = commands[probe]
        try:
            if probe not in _OWN_EXIT_CHECK and not probe.startswith("zypper-"):
                result = CommandResult(command.render(sudo=False), code, stdout, stderr, 0.0)
                collect_rpm.check_result("node", command, result, collect_rpm.dnf_locked, 0)
            out[probe] = _jsonable(parse())
        except NodeError as err:
            out[probe] = {"exit": code, "error": type(err).__name__, "message": str(err)}
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
