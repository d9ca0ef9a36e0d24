#!/usr/bin/env python3
"""Capture what patchfleet's apt probes print on a real test node, as golden files.

For each case the node is brought to a state (fresh, kernel upgraded so a reboot is pending,
fully upgraded, then rebooted) and every probe in ``patchfleet.probes`` is run over the system
``ssh`` client with exactly the string ``Command.render(sudo=False)`` gives, as a scan would.
Output lands in ``tests/golden/apt/<case>/<probe>.stdout|.stderr|.exit`` (plus ``.cmd``, the
command that produced it). Needs root and the venv (it imports patchfleet)::

    /tmp/pfvenv/bin/python testnodes/capture_golden.py            # all cases
    /tmp/pfvenv/bin/python testnodes/capture_golden.py --case debian12-fresh

The node lives in a throw-away state directory, so captures never disturb other test nodes.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import testnodes as tn  # the sibling script, found through the sys.path line above
from patchfleet import probes
from patchfleet.transport.base import Command

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden" / "apt"
NODE = "golden"
REBOOT = "<reboot>"

# case -> commands run on the node (in order, cumulatively) before that case is captured
CASES: dict[str, tuple[str, ...]] = {
    "debian12-fresh": (),
    "debian12-reboot-pending": ("apt-get -q -y install linux-image-fake",),
    "debian12-upgraded": ("apt-get -q -y dist-upgrade",),
    "debian12-rebooted": (REBOOT,),
}
UPGRADABLE_RE = re.compile(r"^([^/\s]+)/\S+ (\S+) \S+ \[upgradable from: \S+\]$")


def upgradable(fleet: tn.Fleet) -> list[tuple[str, str]]:
    """(name, candidate version) of every upgradable package, from ``apt list --upgradable``."""
    out = fleet.ssh(NODE, "LC_ALL=C apt list --upgradable 2>/dev/null", check=True).stdout
    found = []
    for line in out.splitlines():
        if line.startswith("Listing") or not line.strip():
            continue
        m = UPGRADABLE_RE.match(line)
        if not m:
            raise tn.TestnodesError(f"unexpected line from apt list --upgradable: {line!r}")
        found.append((m[1], m[2]))
    return sorted(found)


def case_probes(fleet: tn.Fleet) -> list[Command]:
    """The probes in the order a scan runs them: refresh first, apt-cache show last."""
    cmds = [probes.apt_update(), probes.OS_RELEASE, *probes.APT_SCAN_PROBES]
    wanted = upgradable(fleet)
    if wanted:
        cmds.append(probes.apt_show(wanted))
    return cmds


def capture_case(fleet: tn.Fleet, case: str, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*"):
        if old.suffix in (".stdout", ".stderr", ".exit", ".cmd"):
            old.unlink()
    for cmd in case_probes(fleet):
        rendered = cmd.render(sudo=False)
        proc = fleet.ssh(NODE, rendered, timeout=600)
        if proc.returncode == 255:
            raise tn.TestnodesError(f"ssh to the node failed for {cmd.label}: {proc.stderr}")
        base = out_dir / cmd.label
        base.with_suffix(".cmd").write_text(rendered + "\n")
        base.with_suffix(".stdout").write_text(proc.stdout)
        base.with_suffix(".stderr").write_text(proc.stderr)
        base.with_suffix(".exit").write_text(f"{proc.returncode}\n")
        flag = "" if proc.returncode in cmd.ok_exit else f"  (exit {proc.returncode}!)"
        print(f"  {case}/{cmd.label}: {len(proc.stdout.splitlines())} lines{flag}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", choices=list(CASES),
                        help="only these cases (the node still goes through the earlier steps)")
    parser.add_argument("--out", type=Path, default=GOLDEN, help=f"default: {GOLDEN}")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("capture_golden: error: must run as root (test nodes need namespaces)",
              file=sys.stderr)
        return 2
    wanted = set(args.case or CASES)
    with tempfile.TemporaryDirectory(prefix="pf-golden-") as state:
        fleet = tn.Fleet(state_dir=state, tie_to_parent=True)
        try:
            fleet.build(["default"])
            fleet.start(NODE)
            for case, steps in CASES.items():
                for step in steps:
                    if step == REBOOT:
                        fleet.reboot(NODE)
                    else:
                        fleet.ssh(NODE, f"DEBIAN_FRONTEND=noninteractive {step}",
                                  check=True, timeout=600)
                if case in wanted:
                    started = time.monotonic()
                    capture_case(fleet, case, args.out / case)
                    print(f"{case}: captured in {time.monotonic() - started:.1f} s")
        except tn.TestnodesError as err:
            print(f"capture_golden: error: {err}", file=sys.stderr)
            return 1
        finally:
            if fleet.exists(NODE):
                fleet.destroy(NODE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
