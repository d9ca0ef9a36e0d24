"""Capture the POST-INSTALL probes on real test nodes into tests/golden/post/<case>/.

Run as root from the repository root (nodes post-deb, post-rocky, post-sles are started if
needed in $PATCHFLEET_TESTNODES_STATE_DIR, default /tmp/post-nodes, and reset before each case):

    /tmp/pfvenv/bin/python tests/golden/post/capture.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "src"))
from patchfleet.domain.facts import PackageManager  # noqa: E402
from patchfleet.managers.post_probes import post_install_probes  # noqa: E402
from patchfleet.managers.registry import support_for  # noqa: E402
from patchfleet.transport.base import Command  # noqa: E402

OUT = Path(__file__).resolve().parent
TN = [sys.executable, str(REPO / "testnodes/testnodes.py")]
MANAGERS = {"default": "apt", "rocky9": "dnf", "sles15": "zypper"}
"""The package manager of each node variant the cases use."""

# A stand-in unattended-upgrades package (the local archive has none): dpkg records it as
# installed, which is what the probe checks.
FAKE_UU = (
    "set -e; d=$(mktemp -d); mkdir -p $d/DEBIAN; "
    "printf 'Package: unattended-upgrades\\nVersion: 2.9.1+nmu3\\nArchitecture: all\\n"
    "Maintainer: test <t@example.org>\\nDescription: stand-in for tests\\n' > $d/DEBIAN/control; "
    "dpkg-deb --root-owner-group --build $d /tmp/uu.deb >/dev/null; dpkg -i /tmp/uu.deb"
)
AUTO_UPGRADES = (
    "printf 'APT::Periodic::Update-Package-Lists \"1\";\\n"
    "APT::Periodic::Unattended-Upgrade \"1\";\\n' > /etc/apt/apt.conf.d/20auto-upgrades"
)
# A stand-in packagekitd (the local archive has none): an executable at the daemon's path, and
# for the running case a process whose comm is "packagekitd" (sleep under that name).
FAKE_PACKAGEKITD = "cp /bin/sleep /usr/libexec/packagekitd"
RUN_PACKAGEKITD = ("(setsid /usr/libexec/packagekitd 3600 </dev/null >/dev/null 2>&1 &); "
                   "for i in $(seq 50); do pgrep -x packagekitd >/dev/null && break; "
                   "sleep 0.1; done; pgrep -x packagekitd")
CASES: list[tuple[str, str, str, list[str]]] = [
    ("debian12-fresh", "post-deb", "default", []),
    ("debian12-upgraded-uu", "post-deb", "default",
     ["apt-get install -y fake-daemon", FAKE_UU, AUTO_UPGRADES]),
    ("debian12-uu-config-only", "post-deb", "default", [AUTO_UPGRADES]),
    ("debian12-packagekit-idle", "post-deb", "default", [FAKE_PACKAGEKITD]),
    ("debian12-packagekit-running", "post-deb", "default",
     [FAKE_PACKAGEKITD, RUN_PACKAGEKITD]),
    ("rocky9-upgraded", "post-rocky", "rocky9", ["dnf -y upgrade fake-daemon"]),
    ("sles15-upgraded", "post-sles", "sles15",
     ["zypper -n --no-refresh update -y fake-daemon"]),
]


def case_commands(variant: str) -> list[Command]:
    """The post-install probes captured on a node of ``variant``, in the order they are sent."""
    support = support_for(PackageManager(MANAGERS[variant]))
    return [probe.command for probe in post_install_probes(support)]


def ssh(node: str, cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TN, "ssh", node, cmd], capture_output=True, text=True, timeout=300)


def main() -> int:
    os.environ.setdefault("PATCHFLEET_TESTNODES_STATE_DIR", "/tmp/post-nodes")
    for case, node, variant, steps in CASES:
        status = subprocess.run([*TN, "status"], capture_output=True, text=True).stdout
        if node not in status:
            subprocess.run([*TN, "start", node, "--variant", variant], check=True)
        subprocess.run([*TN, "reset", node], check=True, capture_output=True)
        out = OUT / case
        shutil.rmtree(out, ignore_errors=True)
        (out / "steps").mkdir(parents=True)
        for i, step in enumerate(steps, 1):
            r = ssh(node, step)
            base = out / "steps" / f"{i:02d}"
            base.with_suffix(".cmd").write_text(step + "\n")
            base.with_suffix(".stdout").write_text(r.stdout)
            base.with_suffix(".stderr").write_text(r.stderr)
            base.with_suffix(".exit").write_text(f"{r.returncode}\n")
            if r.returncode:
                print(f"{case}: step {step!r} exited {r.returncode}: {r.stderr}", file=sys.stderr)
                return 1
        for command in case_commands(variant):
            rendered = command.render(sudo=False)
            r = ssh(node, rendered)
            (out / f"{command.name}.cmd").write_text(rendered + "\n")
            (out / f"{command.name}.stdout").write_text(r.stdout)
            (out / f"{command.name}.stderr").write_text(r.stderr)
            (out / f"{command.name}.exit").write_text(f"{r.returncode}\n")
        print(f"captured {case}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
