"""Rebooting a node and waiting for it to come back, and deciding whether to reboot at all.

Pure decisions (no I/O)::

    decide_reboot(option, installed_count, pending_reboot_count, os_says_required)
        -> RebootDecision(reboot, reason)
    should_reboot(history, limit=MAX_REBOOTS_PER_RUN) -> RebootDecision(reboot, reason)

I/O::

    await reboot_and_wait(node, connector, timeout=600, poll=2, boot_id_before=None)
        -> RebootResult

Reboot options (AWS Patch Manager section 2.3, plus one extension):

* ``RebootIfNeeded`` (AWS default): reboot when this run installed at least one patch (whether or
  not that patch needs a reboot) or any patch is ``INSTALLED_PENDING_REBOOT``.
* ``NoReboot``: never; installed patches stay ``INSTALLED_PENDING_REBOOT``.
* ``RebootIfRequired`` (patchfleet): only when the OS itself says a reboot is needed
  (``/var/run/reboot-required``, ``dnf needs-restarting -r`` exit 1, ``zypper
  needs-rebooting`` exit 102).

How a reboot is done (``reboot_and_wait``): the boot id (``/proc/sys/kernel/random/boot_id``) is
read, then :data:`REBOOT_COMMANDS` are tried in osconfig's order (``systemctl reboot``, ``reboot``,
``shutdown -r now``; without osconfig's ``shutdown -r -t 0``, which Linux shutdown does not take)
until one is accepted. Each is one privileged program with fixed arguments, so sudoers can name
it (``patchfleet sudoers``); each asks init to reboot and returns, and a connection lost while
sending it counts as the reboot starting. When all three fail the node fails at once with their
errors. Then new connections are tried, with backoff from ``poll`` up to :data:`MAX_POLL`, until
a *different* boot id answers (Ansible's reboot module does the same).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NamedTuple

from patchfleet.domain.inventory import ResolvedNode
from patchfleet.errors import CommandError, ConfigError, NodeError
from patchfleet.transport.base import Command, Connector

RebootOption = Literal["RebootIfNeeded", "NoReboot", "RebootIfRequired"]
REBOOT_OPTIONS: tuple[str, ...] = ("RebootIfNeeded", "NoReboot", "RebootIfRequired")

MAX_REBOOTS_PER_RUN = 3
"""Boot-loop guard. A Linux run needs at most two reboots (one for a reboot already pending
before install, as osconfig does, and one after install); the third is a spare. osconfig allows
5 per patch task because Windows may need several reboots to finish one update."""

MAX_POLL = 15.0
"""Longest wait between two reconnect attempts."""
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
REBOOT_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("systemctl", "reboot"), ("reboot",), ("shutdown", "-r", "now"))
"""Tried in this order until one exits 0 (osconfig's order)."""


class RebootDecision(NamedTuple):
    reboot: bool
    reason: str


class RebootTimeout(NodeError):
    """The node did not come back with a new boot id in time."""

    transient = True
    reason_code = "REBOOT_TIMEOUT"


class RebootFailed(NodeError):
    """Every reboot command failed on the node: it is still up on the same boot."""

    reason_code = "REBOOT_FAILED"


@dataclass(frozen=True, slots=True)
class RebootResult:
    node_id: str
    boot_id_before: str
    boot_id_after: str
    downtime: float
    """Seconds from sending the reboot command to the first answer from the new boot."""
    attempts: int
    """Reconnect attempts, the successful one included."""


def decide_reboot(
    option: str, installed_count: int, pending_reboot_count: int, os_says_required: bool | None
) -> RebootDecision:
    """Whether to reboot after an install, and why (pure).

    ``installed_count``: patches installed by this run; ``pending_reboot_count``: patches in
    ``INSTALLED_PENDING_REBOOT`` (from earlier NoReboot runs); ``os_says_required``: what the OS
    reports (None: it could not tell).
    """
    if option not in REBOOT_OPTIONS:
        raise ConfigError(
            f"unknown reboot option {option!r}; use one of {', '.join(REBOOT_OPTIONS)}"
        )
    if installed_count < 0 or pending_reboot_count < 0:
        raise ValueError("patch counts cannot be negative")
    if option == "NoReboot":
        if installed_count or pending_reboot_count:
            return RebootDecision(
                False,
                f"NoReboot: {installed_count} installed and {pending_reboot_count} earlier "
                "patch(es) stay INSTALLED_PENDING_REBOOT until a reboot and a scan",
            )
        return RebootDecision(False, "NoReboot: nothing installed, nothing pending")
    if option == "RebootIfRequired":
        if os_says_required:
            return RebootDecision(True, "RebootIfRequired: the OS reports a reboot is required")
        if os_says_required is None:
            return RebootDecision(
                False, "RebootIfRequired: the OS gave no reboot-required answer; not rebooting"
            )
        return RebootDecision(False, "RebootIfRequired: the OS reports no reboot is required")
    if installed_count:
        return RebootDecision(
            True, f"RebootIfNeeded: {installed_count} patch(es) installed in this run"
        )
    if pending_reboot_count:
        return RebootDecision(
            True,
            f"RebootIfNeeded: {pending_reboot_count} patch(es) are INSTALLED_PENDING_REBOOT",
        )
    return RebootDecision(False, "RebootIfNeeded: nothing installed and nothing pending reboot")


def should_reboot(
    history: Sequence[datetime | float], limit: int = MAX_REBOOTS_PER_RUN
) -> RebootDecision:
    """Boot-loop guard (pure): ``history`` holds the times this node was rebooted in this run."""
    if limit < 1:
        raise ValueError("the reboot limit must be at least 1")
    done = len(history)
    if done >= limit:
        return RebootDecision(
            False,
            f"refusing to reboot: the node was already rebooted {done} time(s) in this run "
            f"(limit {limit}); a node that needs a reboot after every reboot is in a loop: "
            "look at what it installs or reports as needing a reboot",
        )
    return RebootDecision(True, f"reboot {done + 1} of at most {limit} in this run")


def reboot_commands() -> tuple[Command, ...]:
    """The reboot commands, privileged, in the order they are tried."""
    return tuple(Command(argv, privileged=True, timeout=30, name="reboot")
                 for argv in REBOOT_COMMANDS)


def _probe_command(timeout: float) -> Command:
    return Command(("cat", BOOT_ID_PATH), timeout=timeout, name="boot-id")


async def _read_boot(node: ResolvedNode, connector: Connector, timeout: float
                     ) -> str:
    """The boot id, from a fresh connection."""
    async with connector.open(node) as t:
        res = await t.run(_probe_command(timeout))
    if res.exit_status != 0:
        raise CommandError(
            f"reading the boot id on {node.id} failed (exit {res.exit_status}): "
            f"{res.stderr.strip()[-300:]}",
            node.id,
        )
    boot_id = res.stdout.strip()
    if not boot_id:
        raise CommandError(f"{node.id} printed no boot id from {BOOT_ID_PATH}", node.id)
    return boot_id


async def reboot_and_wait(
    node: ResolvedNode,
    connector: Connector,
    *,
    timeout: float = 600,
    poll: float = 2,
    boot_id_before: str | None = None,
) -> RebootResult:
    """Reboot ``node`` and wait until it answers with a new boot id (at most ``timeout`` s
    from sending the reboot). Raises :class:`RebootTimeout`, :class:`RebootFailed`, or the
    transport's terminal errors (auth, host key) as they come."""
    if boot_id_before is None:
        boot_id_before = await _read_boot(node, connector, min(30.0, timeout))
    sent = time.monotonic()
    deadline = sent + timeout
    try:
        async with connector.open(node) as t:
            failures: list[str] = []
            for command in reboot_commands():
                res = await t.run(command)
                if res.exit_status == 0:
                    break
                failures.append(f"{' '.join(command.argv)}: exit {res.exit_status}: "
                                f"{(res.stdout + res.stderr).strip()[-200:]}")
            else:
                raise RebootFailed(f"{node.id} could not be rebooted: {'; '.join(failures)}",
                                   node.id)
    except NodeError as err:
        if not err.transient:  # lost connection / timeout: the node is going down, expected
            raise
    wait = poll
    attempts = 0
    last_error = "no answer yet"
    await asyncio.sleep(min(poll, max(0.0, deadline - time.monotonic())))
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RebootTimeout(
                f"{node.id} did not come back from its reboot within {timeout:g}s "
                f"(boot id before {boot_id_before}; last attempt: {last_error})",
                node.id,
            )
        attempts += 1
        try:
            boot_id = await asyncio.wait_for(
                _read_boot(node, connector, max(1.0, min(30.0, left))), timeout=max(1.0, left)
            )
        except (NodeError, TimeoutError) as err:
            if isinstance(err, NodeError) and not err.transient:
                raise
            last_error = str(err) or type(err).__name__
        else:
            if boot_id != boot_id_before:
                return RebootResult(
                    node_id=node.id,
                    boot_id_before=boot_id_before,
                    boot_id_after=boot_id,
                    downtime=time.monotonic() - sent,
                    attempts=attempts,
                )
            last_error = "still on the old boot id"
        await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))
        wait = min(wait * 1.5, MAX_POLL)
