#!/usr/bin/env python3
"""Capture what patchfleet's probes print on real test nodes, as golden files.

Each case brings a node of some variant to a state (fresh, upgraded, rebooted, locked, with a
broken repository...) and runs every probe of that node's package manager
(``PackageManagerSupport.probes`` in ``patchfleet.managers``) over the system ``ssh`` client,
with exactly the string ``Command.render(sudo=False)`` gives, as a scan would. Output lands in
``tests/golden/<manager>/<case>/<probe>.stdout|.stderr|.exit|.cmd`` (manager: apt, dnf or
zypper); ``tests/unit/test_golden_commands.py`` checks that each ``.cmd`` is still what
:func:`case_commands` builds today. What the steps that made the state printed (``dnf -y
upgrade``, ``zypper patch``...) goes to ``<case>/steps/`` in the same layout, for install
parsers. Needs root and the venv (it imports patchfleet)::

    /tmp/pfvenv/bin/python testnodes/capture_golden.py                   # every case
    /tmp/pfvenv/bin/python testnodes/capture_golden.py --family dnf
    /tmp/pfvenv/bin/python testnodes/capture_golden.py --case rocky9-upgraded

Cases of one chain share a node and run in order (a case's state builds on the one before);
asking for one case still runs the steps of the cases before it in its chain. The nodes live in
a throw-away state directory, so captures never disturb other test nodes.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rpmrepo  # the sibling modules, found through the sys.path line above

import testnodes as tn
from patchfleet.domain.facts import PackageManager
from patchfleet.managers.registry import support_for
from patchfleet.transport.base import Command

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden"


@dataclasses.dataclass(frozen=True)
class Step:
    """A shell command run on the node before a case is captured (recorded under steps/),
    or a special action: ``reboot``, ``reset`` (back to the fresh template), ``hold-lock`` (a
    real package transaction that stays in its %post until the case is captured)."""

    command: str
    ok_exit: frozenset[int] = frozenset({0})
    action: str = ""
    record: bool = True


def run(command: str, *ok: int, record: bool = True) -> Step:
    return Step(command, frozenset(ok or (0,)), record=record)


REBOOT = Step("", action="reboot")
RESET = Step("", action="reset")
HOLD_LOCK = Step("", action="hold-lock")


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    chain: str  # node name; cases of one chain run in order on that node
    variant: str
    steps: tuple[Step, ...] = ()
    lock_timeout: int | None = None  # ZYPP_LOCK_TIMEOUT override for the captured probes


def _repoint(family: str, target: str) -> Step:
    """Point the fake-updates repository at another directory, as an admin editing the repo
    file would (the next refresh notices)."""
    conf = ("/etc/yum.repos.d/fake.repo" if family == "dnf"
            else "/etc/zypp/repos.d/fake-updates.repo")
    pattern = "^baseurl=file:/*srv/repo/fake-updates/*$"
    return run(f"grep -q '{pattern}' {conf} && "
               f"sed -i 's|{pattern}|baseurl=file://{target}|' {conf}", record=False)


CASES: tuple[Case, ...] = (
    # Debian: one node through fresh -> kernel -> upgraded -> rebooted.
    Case("debian12-fresh", "golden", "default"),
    Case("debian12-reboot-pending", "golden", "default",
         (run("apt-get -q -y install linux-image-fake", record=False),)),
    Case("debian12-upgraded", "golden", "default",
         (run("apt-get -q -y dist-upgrade", record=False),)),
    Case("debian12-rebooted", "golden", "default", (REBOOT,)),
    # Rocky 9: fresh -> dnf upgrade (kernel included: reboot needed) -> rebooted.
    Case("rocky9-fresh", "golden-rocky", "rocky9"),
    Case("rocky9-upgraded", "golden-rocky", "rocky9", (run("dnf -y upgrade"),)),
    Case("rocky9-rebooted", "golden-rocky", "rocky9", (REBOOT,)),
    # Rocky 9 faults, each from a fresh node.
    Case("rocky9-locked", "golden-rocky-faults", "rocky9", (HOLD_LOCK,)),
    Case("rocky9-noupdateinfo", "golden-rocky-faults", "rocky9",
         (RESET, _repoint("dnf", "/srv/repo/alt/fake-updates-noupdateinfo"))),
    Case("rocky9-badinfo", "golden-rocky-faults", "rocky9",
         (RESET, _repoint("dnf", "/srv/repo/alt/fake-updates-badinfo"))),
    Case("rocky9-brokenrepo", "golden-rocky-faults", "rocky9",
         (RESET, _repoint("dnf", "/srv/repo/missing"))),
    Case("al2023-fresh", "golden-al", "al2023"),
    # SLES 15 SP6: fresh -> zypper patch three times (update stack first, exit 103; then the
    # rest but the interactive kernel patch; then --with-interactive, exit 102) -> rebooted.
    Case("sles15-fresh", "golden-sles", "sles15"),
    Case("sles15-patched", "golden-sles", "sles15",
         (run("zypper -n patch", 103), run("zypper -n patch"),
          run("zypper -n patch --with-interactive", 102))),
    Case("sles15-rebooted", "golden-sles", "sles15", (REBOOT,)),
    Case("sles15-locked", "golden-sles-faults", "sles15", (HOLD_LOCK,), lock_timeout=5),
    Case("sles15-brokenrepo", "golden-sles-faults", "sles15",
         (RESET, _repoint("zypper", "/srv/repo/missing"))),
    Case("leap15-fresh", "golden-leap", "leap15"),
)
FAMILY_DIRS = {"debian": "apt", "rpm": "dnf", "zypper": "zypper"}
UPGRADABLE_RE = re.compile(r"^([^/\s]+)/\S+ (\S+) \S+ \[upgradable from: \S+\]$")
PATCH_RE = re.compile(r'<update kind="patch" name="([^"]+)"[^>]* status="([^"]+)"')


def family_dir(case: Case) -> str:
    return FAMILY_DIRS[tn.VARIANTS[case.variant].family]


def upgradable(fleet: tn.Fleet, node: str) -> list[tuple[str, str]]:
    """(name, candidate version) of every upgradable package, from ``apt list --upgradable``."""
    out = fleet.ssh(node, "LC_ALL=C apt list --upgradable 2>/dev/null", check=True).stdout
    found = []
    for line in out.splitlines():
        if line.startswith("Listing") or not line.strip():
            continue
        m = UPGRADABLE_RE.match(line)
        if not m:
            raise tn.TestnodesError(f"unexpected line from apt list --upgradable: {line!r}")
        found.append((m[1], m[2]))
    return sorted(found)


def patches_to_describe(fleet: tn.Fleet, node: str) -> list[str]:
    """Patch names a scan asks ``zypper info -t patch`` about: all but the not-needed ones."""
    out = fleet.ssh(node, "LC_ALL=C zypper --xmlout -n --no-refresh list-patches --all").stdout
    return sorted({name for name, status in PATCH_RE.findall(out) if status != "not-needed"})


def case_commands(case: Case, args: Mapping[str, Sequence[str]]) -> list[Command]:
    """The commands a case captures: every probe of its package manager in the order a scan
    sends them; a probe that takes arguments only when ``args`` has words for it (by probe
    name). Pure, so the golden test rebuilds each capture's command with it."""
    cmds = []
    for probe in support_for(PackageManager(family_dir(case))).probes:
        if probe.build is None:
            cmds.append(probe.command)
        elif args.get(probe.name):
            cmds.append(probe.build(args[probe.name]))
    if case.lock_timeout is not None:
        env = (("ZYPP_LOCK_TIMEOUT", str(case.lock_timeout)),)
        cmds = [dataclasses.replace(c, env=env) if dict(c.env).get("ZYPP_LOCK_TIMEOUT") else c
                for c in cmds]
    return cmds


def case_probes(fleet: tn.Fleet, node: str, case: Case) -> list[Command]:
    """The commands of ``case``, with the arguments the node's state gives: the upgradable
    versions (apt-cache show), the patches to describe (zypper info -t patch)."""
    family = family_dir(case)
    args: dict[str, list[str]] = {}
    if family == "apt":
        args["apt-cache-show"] = [f"{name}={version}" for name, version in upgradable(fleet, node)]
    elif family == "zypper":
        args["zypper-patch-info"] = patches_to_describe(fleet, node)
    return case_commands(case, args)


def _write(base: Path, command: str, stdout: str, stderr: str, exit_status: int) -> None:
    base.parent.mkdir(parents=True, exist_ok=True)
    base.with_name(base.name + ".cmd").write_text(command + "\n")
    base.with_name(base.name + ".stdout").write_text(stdout)
    base.with_name(base.name + ".stderr").write_text(stderr)
    base.with_name(base.name + ".exit").write_text(f"{exit_status}\n")


def _clear(out_dir: Path) -> None:
    for d in (out_dir, out_dir / "steps"):
        if d.is_dir():
            for old in d.iterdir():
                if old.suffix in (".stdout", ".stderr", ".exit", ".cmd"):
                    old.unlink()


def capture_case(fleet: tn.Fleet, node: str, case: Case, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for cmd in case_probes(fleet, node, case):
        rendered = cmd.render(sudo=False)
        proc = fleet.ssh(node, rendered, timeout=900)
        if proc.returncode == 255:
            raise tn.TestnodesError(f"ssh to the node failed for {cmd.label}: {proc.stderr}")
        _write(out_dir / cmd.label, rendered, proc.stdout, proc.stderr, proc.returncode)
        flag = "" if proc.returncode in cmd.ok_exit else f"  (exit {proc.returncode}!)"
        print(f"  {case.name}/{cmd.label}: {len(proc.stdout.splitlines())} lines{flag}")


# A mirror that answers nothing while the hold file exists: `dnf makecache` against it keeps
# dnf's metadata lock, as a dnf stuck on a slow mirror (or dnf-makecache.timer) does.
SLOW_MIRROR_PY = """
import http.server, os, sys, time
class Stall(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        deadline = time.time() + 600
        while os.path.exists(sys.argv[2]) and time.time() < deadline:
            time.sleep(0.2)
        self.send_error(404)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Stall).serve_forever()
"""


class LockHolder:
    """Another real package-manager process holding the lock while a case is captured.

    zypper: an install sitting in the %post of fake-slowinstall holds the zypp lock for its
    whole run. dnf 4 takes no lock for reading while another dnf installs (only transactions
    take the rpmdb lock), but every command that loads metadata takes the metadata lock: a
    `dnf makecache` stalled on a slow mirror holds it, so scans meet it there.
    """

    def __init__(self, fleet: tn.Fleet, node: str, family: str) -> None:
        self.fleet, self.node, self.family = fleet, node, family
        self.hold = rpmrepo.SLOWINSTALL_HOLD

    def __enter__(self) -> LockHolder:
        if self.family == "dnf":
            port = tn.free_port()
            repo = (f"[slow-mirror]\nname=Slow mirror\nbaseurl=http://127.0.0.1:{port}/\n"
                    "gpgcheck=0\ntimeout=600\nminrate=1\n")
            self.fleet.ssh(self.node, "mkdir -p /tmp/pf-slow && cat > /tmp/pf-slow/slow.py && "
                           f"printf %s {shlex.quote(repo)} > /tmp/pf-slow/slow.repo",
                           input=SLOW_MIRROR_PY, check=True)
            holder = (f"python3 /tmp/pf-slow/slow.py {port} {self.hold} & "
                      "sleep 1; dnf --setopt=reposdir=/tmp/pf-slow makecache")
            probe = ("dnf -q -C --setopt=exit_on_lock=True check-update >/dev/null 2>&1;"
                     " echo $?")
            locked = "200"
        else:
            rpm = f"/srv/repo/alt/{rpmrepo.SLOWINSTALL}-1.0-{rpmrepo.RELEASE}.noarch.rpm"
            holder = f"zypper -n --no-gpg-checks install {rpm}"
            probe = "ZYPP_LOCK_TIMEOUT=0 zypper -n --no-refresh lu >/dev/null 2>&1; echo $?"
            locked = "7"
        self.fleet.ssh(self.node, f"touch {self.hold}; setsid sh -c {shlex.quote(holder)} "
                       "</dev/null >/tmp/lock-holder.log 2>&1 &", check=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.fleet.ssh(self.node, probe).stdout.strip() == locked:
                return self
            time.sleep(0.5)
        log = self.fleet.ssh(self.node, "cat /tmp/lock-holder.log").stdout
        raise tn.TestnodesError(f"{self.node}: the lock holder never took the lock:\n{log}")

    def __exit__(self, *exc: object) -> None:
        # Patterns that cannot match this very shell's command line.
        self.fleet.ssh(self.node, f"rm -f {self.hold}; pkill -f '^python3 /tmp/pf-slow/'; "
                       "while pgrep -x 'dnf|zypper' >/dev/null; do sleep 0.2; done")


def run_chain(fleet: tn.Fleet, chain: list[Case], wanted: set[str], out: Path) -> None:
    node = chain[0].chain
    last_wanted = max(i for i, c in enumerate(chain) if c.name in wanted)
    fleet.start(node, variant=chain[0].variant)
    try:
        for case in chain[: last_wanted + 1]:
            out_dir = out / family_dir(case) / case.name
            if case.name in wanted:
                _clear(out_dir)
            holder = None
            for no, step in enumerate(case.steps, 1):
                if step.action == "reboot":
                    fleet.reboot(node)
                elif step.action == "reset":
                    fleet.reset(node)
                elif step.action == "hold-lock":
                    holder = LockHolder(fleet, node, family_dir(case))
                else:
                    proc = fleet.ssh(node, step.command, timeout=900)
                    if proc.returncode not in step.ok_exit:
                        raise tn.TestnodesError(
                            f"{node}: step {step.command!r} exited {proc.returncode}:\n"
                            f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
                    if step.record and case.name in wanted:
                        _write(out_dir / "steps" / f"{no:02d}", f"LC_ALL=C {step.command}",
                               proc.stdout, proc.stderr, proc.returncode)
            if case.name not in wanted:
                if holder:
                    with holder:
                        pass
                continue
            started = time.monotonic()
            with holder or contextlib.nullcontext():
                capture_case(fleet, node, case, out_dir)
            print(f"{case.name}: captured in {time.monotonic() - started:.1f} s")
    finally:
        if fleet.exists(node):
            fleet.destroy(node)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", choices=[c.name for c in CASES],
                        help="only these cases (the node still goes through the earlier steps)")
    parser.add_argument("--family", action="append", choices=sorted(set(FAMILY_DIRS.values())),
                        help="only the cases of these package managers")
    parser.add_argument("--out", type=Path, default=GOLDEN, help=f"default: {GOLDEN}")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("capture_golden: error: must run as root (test nodes need namespaces)",
              file=sys.stderr)
        return 2
    wanted = {c.name for c in CASES
              if (not args.case or c.name in args.case)
              and (not args.family or family_dir(c) in args.family)}
    chains: dict[str, list[Case]] = {}
    for c in CASES:
        chains.setdefault(c.chain, []).append(c)
    with tempfile.TemporaryDirectory(prefix="pf-golden-") as state:
        fleet = tn.Fleet(state_dir=state, tie_to_parent=True)
        try:
            variants = sorted({c.variant for c in CASES if c.name in wanted})
            fleet.build(variants)
            for chain in chains.values():
                if wanted & {c.name for c in chain}:
                    run_chain(fleet, chain, wanted, args.out)
        except tn.TestnodesError as err:
            print(f"capture_golden: error: {err}", file=sys.stderr)
            return 1
        finally:
            fleet.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
