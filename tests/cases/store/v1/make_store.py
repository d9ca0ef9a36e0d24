"""Write a small compliance store with the patchfleet code on PYTHONPATH (an OLD checkout).

Not a test: run by hand against an old commit, so the Parquet bytes come from the old writer.
See README.md beside this file for the exact commits and commands. The scan is real: the old
code's own probes, parsers and evaluation replay the old checkout's golden captures of two test
nodes (Debian 12 and Rocky Linux 9, fresh), and a third node on a closed port fails for real.

    PYTHONPATH=OLD/src python make_store.py OLD/tests/golden OUT_STORE RUN_ID
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import patchfleet.scan as scan

from patchfleet.domain.baseline import embedded_baselines_dir, load_baselines
from patchfleet.domain.inventory import Inventory, Node
from patchfleet.domain.records import Operation
from patchfleet.domain.results import RunContext
from patchfleet.store.writer import write_run
from patchfleet.transport import KeyRing, ReplayTransport, load_replay_dir

REPLAYED = {"deb12-fresh": "apt/debian12-fresh", "rocky9-fresh": "dnf/rocky9-fresh"}


def main(golden: Path, store: Path, run_id: str) -> None:
    started_at = datetime.now(UTC)
    real_open = scan.open_transport

    def open_transport(node, keys):  # type: ignore[no-untyped-def]
        if node.id in REPLAYED:
            return ReplayTransport(node.id, load_replay_dir(golden / REPLAYED[node.id]))
        return real_open(node, keys)  # the unreachable node goes through real SSH

    scan.open_transport = open_transport  # type: ignore[assignment]
    scratch = Path(tempfile.mkdtemp())
    key, known = scratch / "id_ed25519", scratch / "known_hosts"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    known.touch()
    inventory = Inventory(nodes=[
        Node(id="deb12-fresh", tags={"PatchGroup": "web"}),
        Node(id="rocky9-fresh", tags={"PatchGroup": "db"}),
        Node(id="gone", host="127.0.0.1", port=9, identity_file=str(key),
             known_hosts=str(known), tags={"PatchGroup": "web"}),
    ])
    registry = load_baselines(embedded_baselines_dir())
    options = scan.ScanOptions(now=started_at)
    keys = KeyRing(use_agent=False, default_identities=())

    async def run_all():  # type: ignore[no-untyped-def]
        return [await scan.scan_node(n, registry, keys, options) for n in inventory.resolved()]

    results = asyncio.run(run_all())
    write_run(store, RunContext(run_id=run_id, operation=Operation.SCAN,
                                started_at=started_at), results)
    for r in results:
        print(r.node_id, r.summary.status, len(r.records), r.failure_reason)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
