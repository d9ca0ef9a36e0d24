"""Parse the output of the ``apt-reboot`` probe: boot id, reboot-required flag, package list.

The probe prints the boot id, then ``reboot-required: yes|no``
(whether /var/run/reboot-required exists), then /var/run/reboot-required.pkgs verbatim.
"""

from __future__ import annotations

import re

from patchfleet.domain.facts import RebootState
from patchfleet.errors import ParseError

_BOOT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_PKG = re.compile(r"^[a-z0-9][a-z0-9+.\-]*(:[a-z0-9\-]+)?$")


def parse_apt_reboot(text: str) -> RebootState:
    lines = text.splitlines()
    if len(lines) < 2:
        raise ParseError("expected a boot id and a reboot-required line", tool="apt-reboot")
    boot_id = lines[0].strip()
    if not _BOOT_ID.match(boot_id):
        raise ParseError("not a boot id", "apt-reboot", 1, lines[0])
    flag = lines[1].strip()
    if flag not in ("reboot-required: yes", "reboot-required: no"):
        raise ParseError("expected 'reboot-required: yes|no'", "apt-reboot", 2, lines[1])
    packages: list[str] = []
    for no, raw in enumerate(lines[2:], 3):
        name = raw.strip()
        if not name:
            continue
        if not _PKG.match(name):
            raise ParseError("not a package name", "reboot-required.pkgs", no, raw)
        if name not in packages:
            packages.append(name)
    return RebootState(boot_id=boot_id, required=flag.endswith("yes"), packages=tuple(packages))
