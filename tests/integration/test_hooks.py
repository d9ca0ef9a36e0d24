"""Lifecycle hooks on a real node (deb-a of the session fleet) over patchfleet's transport."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from patchfleet.config.hooks import HookPhase, HookSpec, load_hooks
from patchfleet.config.inventory import load_inventory
from patchfleet.domain.inventory import ResolvedNode
from patchfleet.ops.hooks import HookResult, run_hook
from patchfleet.transport.connector import open_transport
from patchfleet.transport.keys import KeyRing

NODE = "deb-a"


def node_of(fleet: Any) -> ResolvedNode:
    return next(n for n in load_inventory(fleet.inventory).resolved() if n.id == NODE)


def run(fleet: Any, spec: HookSpec, phase: HookPhase = "pre_install",
        snapshot_id: str | None = "snap-42") -> HookResult:
    async def go() -> HookResult:
        keys = KeyRing(use_agent=False)
        try:
            async with open_transport(node_of(fleet), keys) as t:
                return await run_hook(t, phase, spec, run_id="run-7 x'y", node_id=NODE,
                                      operation="Install", snapshot_id=snapshot_id)
        finally:
            keys.close()

    return asyncio.run(go())


def test_hook_sees_its_environment(fleet: Any) -> None:
    res = run(fleet, HookSpec(command='echo "$PATCHFLEET_RUN_ID|$PATCHFLEET_NODE_ID|'
                                      '$PATCHFLEET_OPERATION|$PATCHFLEET_SNAPSHOT_ID|$(id -u)"'))
    assert res.ok and res.status == "ok" and res.exit_status == 0
    assert res.output_tail == "run-7 x'y|deb-a|Install|snap-42|0"
    res = run(fleet, HookSpec(command='echo "${PATCHFLEET_SNAPSHOT_ID-unset}"'), snapshot_id=None)
    assert res.output_tail == "unset"


def test_failing_hook_reports_exit_code_and_output_tail(fleet: Any) -> None:
    res = run(fleet, HookSpec(command="seq 1 2000; echo boom >&2; exit 7"), "post_install")
    assert not res.ok and res.status == "failed"
    assert res.exit_status == 7
    assert res.output_tail.endswith("1999\n2000\nboom")
    assert len(res.output_tail) <= 2000
    assert res.reason == "post_install hook (command) exited 7"


def test_hook_timeout_stops_it(fleet: Any) -> None:
    started = time.monotonic()
    res = run(fleet, HookSpec(command="sleep 31.5; echo never", timeout=1.5))
    assert time.monotonic() - started < 10
    assert not res.ok and res.exit_status is None
    assert "timed out after 1.5s" in res.reason
    # the node's own `timeout` kills the hook shortly after the deadline
    deadline = time.monotonic() + 15
    while fleet.ssh(NODE, "pgrep -f 'sleep 31.5'").returncode == 0:
        assert time.monotonic() < deadline, "the timed-out hook is still running on the node"
        time.sleep(0.5)


def test_script_files_run_with_their_interpreter(fleet: Any, tmp_path: Path) -> None:
    (tmp_path / "bash.sh").write_text(
        '#!/usr/bin/env bash\nset -euo pipefail\narr=(a b)\n'
        'echo "bash ${#arr[@]} $PATCHFLEET_OPERATION $0"\n')
    (tmp_path / "plain.sh").write_text("echo 'plain '\"'\"'quoted'\"'\"' $1'\nexit 3\n")
    hooks = load_hooks({"pre_install": {"script": "bash.sh", "timeout": 30},
                        "on_exit": {"script": "plain.sh"}}, "cfg", base_dir=tmp_path)
    assert hooks.pre_install and hooks.on_exit
    res = run(fleet, hooks.pre_install)
    assert res.ok, res.output_tail
    words = res.output_tail.split()
    assert words[:3] == ["bash", "2", "Install"] and "patchfleet-hook" in words[3]
    res = run(fleet, hooks.on_exit, "on_exit")
    assert res.exit_status == 3 and res.output_tail == "plain 'quoted' $1"
    assert res.reason == "on_exit hook (script plain.sh) exited 3"
    # the temporary copy of the script is gone
    assert fleet.ssh(NODE, "ls /tmp | grep -c patchfleet-hook").stdout.strip() == "0"
