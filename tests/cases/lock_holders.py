"""A real apt-get holding a package-manager lock on a test node, for the lock tests
(integration only: it needs the test nodes)."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# The holder's hook: a sleep whose exact command line marks "the lock is held".
HOOK = "sleep 60.5"


@contextmanager
def apt_lock_held(fleet: Any, node_id: str, hook_list: str, apt_args: str) -> Iterator[None]:
    """Run ``apt-get -o <hook_list>=sleep 60.5 <apt_args>`` in the background on ``node_id``
    (``hook_list`` e.g. ``DPkg::Pre-Invoke::``) and yield once its hook runs (apt takes the
    lock before it), rather than after a fixed time; on exit end the hook, so apt-get gives
    up and drops the lock, and wait for it."""
    marker = shlex.quote(HOOK)
    fleet.ssh(node_id, f"nohup apt-get -o {shlex.quote(f'{hook_list}={HOOK}')} {apt_args} "
              ">/tmp/holder.log 2>&1 & for i in $(seq 150); do "
              f"pgrep -fx {marker} >/dev/null && exit 0; sleep 0.2; done; exit 1", check=True)
    try:
        yield
    finally:
        fleet.ssh(node_id, f"pkill -fx {marker}; while pgrep -x apt-get >/dev/null; do "
                  "sleep 0.2; done", timeout=60)
