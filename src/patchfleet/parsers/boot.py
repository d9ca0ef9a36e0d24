"""Parse the boot probe of rpm-family nodes: the boot id, ``/proc/uptime`` and ``date +%s``.

The node's own clock and uptime are read in one instant, so the boot time (clock - uptime)
needs no trust in the controller's clock. dnf and zypper nodes both send this probe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from patchfleet.errors import ParseError

BOOT_TOOL = "boot"
_BOOT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True, slots=True)
class BootInfo:
    boot_id: str
    boot_time: datetime
    now: datetime


def parse_boot(text: str) -> BootInfo:
    """Three lines: the boot id, ``/proc/uptime`` and ``date +%s``; the boot time is
    now - uptime (not /proc/stat's btime, which ignores time namespaces)."""
    lines = text.splitlines()
    if len(lines) != 3:
        raise ParseError(f"expected 3 lines (boot id, uptime, now), got {len(lines)}", BOOT_TOOL)
    boot_id = lines[0].strip()
    if not _BOOT_ID.match(boot_id):
        raise ParseError("not a boot id", BOOT_TOOL, 1, lines[0])
    parts = lines[1].split()
    try:
        uptime = float(parts[0])
    except (IndexError, ValueError):
        raise ParseError("not /proc/uptime", BOOT_TOOL, 2, lines[1]) from None
    if len(parts) != 2 or uptime < 0:
        raise ParseError("not /proc/uptime", BOOT_TOOL, 2, lines[1])
    if not lines[2].strip().isdigit():
        raise ParseError("not seconds since the epoch", BOOT_TOOL, 3, lines[2])
    now = datetime.fromtimestamp(int(lines[2]), UTC)
    boot = datetime.fromtimestamp(int(lines[2]) - int(uptime), UTC)
    return BootInfo(boot_id=boot_id, boot_time=boot, now=now)
