"""Separate identities on a real node (issue 16): a scan logs in as the scan user, an install
as the install user for every connection (its rescan too: a worker that installs needs only the
install key), as sshd's own log shows."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from patchfleet.ops.install import install_node, request_from_records
from patchfleet.ops.plan import plan_scan
from patchfleet.ops.scan import scan_node
from patchfleet.transport.connector import SSHConnector

_ACCEPTED = re.compile(r"Accepted publickey for (\S+) from 127\.0\.0\.1")


def _logins(console: Path) -> list[str]:
    return _ACCEPTED.findall(console.read_text(errors="replace"))


def test_scans_use_the_scan_identity_and_installs_the_install_identity(
        clean: Any, tmp_path: Path) -> None:
    clean.ssh("deb-a", "useradd -m scanner && install -d -o scanner -m 700 /home/scanner/.ssh "
              "&& install -o scanner -m 600 /root/.ssh/authorized_keys /home/scanner/.ssh/",
              check=True)
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(
        f"defaults: {{known_hosts: {clean.known_hosts}, identity_file: {clean.identity_file}, "
        "user: scanner, install_user: root}\n"
        f"nodes:\n  - {{id: deb-a, host: 127.0.0.1, port: {clean.ports['deb-a']}}}\n")
    console = clean.manager.node_dir("deb-a") / "console.log"
    plan = plan_scan(inventory=str(inventory), store=str(tmp_path / "store"), refresh=False)
    (node,) = plan.nodes

    async def scan_then_install() -> tuple[list[str], list[str], Any]:
        with SSHConnector() as connector:
            before = len(_logins(console))
            scanned = await scan_node(node, plan.registry, connector, plan.options)
            assert not scanned.failed, scanned.failure_reason
            after_scan = len(_logins(console))
            scan_logins = _logins(console)[before:after_scan]
            baseline = plan.registry.get(str(scanned.baseline_id))
            done = await install_node(node, connector, baseline,
                                      request_from_records(scanned.records))
            return scan_logins, _logins(console)[after_scan:], done

    scan_logins, install_logins, done = asyncio.run(scan_then_install())
    assert scan_logins and set(scan_logins) == {"scanner"}
    assert install_logins and set(install_logins) == {"root"}  # install, rescan included
    # installed as root (fake-held stays held: patchfleet never lifts an operator's hold)
    assert {name for name, _, _ in done.installed} >= {"fake-curl", "libfakessl3"}
    assert done.outcome.ok or done.outcome.reason.startswith("HELD: "), done.outcome.reason
    assert not done.result.failed, done.result.failure_reason
