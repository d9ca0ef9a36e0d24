"""What a killed CLI leaves behind: the temporary Prefect server and runs stuck RUNNING.

Without ``PREFECT_API_URL`` Prefect starts a temporary server as a child process of the CLI
and stops it at exit; a kill -9 skips that, and the server lived on (6 of 6 tries). The
server is started with the kernel's parent-death signal, so it dies with the CLI however the
CLI ends. A run the CLI was executing stays RUNNING in Prefect's database; the next CLI run
marks such runs Crashed (their markers: ops/run_markers.py) before it starts its own.

Both reach into Prefect: the first into how its temporary server process is spawned (checked
against the pinned Prefect version by the integration test that kills a CLI).
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import threading
from collections.abc import Callable
from typing import Any
from uuid import UUID

from patchfleet.ops.run_markers import RunMarker, orphaned

__all__ = ["mark_crashed_runs", "tie_temporary_server"]

log = logging.getLogger("patchfleet.cli")
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def tie_temporary_server() -> None:
    """Make Prefect's temporary server (started from this thread) die with this process.

    The parent-death signal follows the thread that forked, so it is set only when the
    server is started from the main thread (where the CLI's flow run starts it)."""
    from prefect.server.api import server

    spawn = server.SubprocessASGIServer._run_uvicorn_command
    if getattr(spawn, "_patchfleet_tied", False):
        return

    def tied(self: Any) -> subprocess.Popen[Any]:
        if threading.current_thread() is not threading.main_thread():
            return spawn(self)
        real: Callable[..., subprocess.Popen[Any]] = subprocess.Popen

        def popen(*args: Any, **kwargs: Any) -> subprocess.Popen[Any]:
            kwargs.setdefault("preexec_fn", _die_with_parent)
            return real(*args, **kwargs)

        subprocess.Popen = popen  # type: ignore[misc, assignment]
        try:
            return spawn(self)
        finally:
            subprocess.Popen = real  # type: ignore[misc, assignment]

    tied._patchfleet_tied = True  # type: ignore[attr-defined]
    server.SubprocessASGIServer._run_uvicorn_command = tied  # type: ignore[method-assign]


async def _mark(markers: list[RunMarker]) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    marked: list[str] = []
    async with get_client() as client:
        for marker in markers:
            try:
                run = await client.read_flow_run(UUID(marker.run_id))
                if run.state is not None and not run.state.is_final():
                    await client.set_flow_run_state(marker.run_id, Crashed(
                        message=f"the patchfleet CLI running it (pid {marker.pid}) ended "
                        "without reporting an outcome (killed?); marked by the next CLI run"),
                        force=True)
                    marked.append(marker.run_id)
            except Exception as exc:  # a run the server no longer knows: forget the marker
                log.debug("could not mark run %s crashed: %s", marker.run_id, exc)
            marker.path.unlink(missing_ok=True)
    return marked


def mark_crashed_runs() -> list[str]:
    """Mark Crashed the runs a killed CLI left RUNNING on the current Prefect API; their ids."""
    import asyncio

    markers = orphaned()
    return asyncio.run(_mark(markers)) if markers else []
