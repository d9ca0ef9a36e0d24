"""Errors in the caller's terms. Plan-time checks name the CLI flag (``--inventory``); a run
started from a deployment (a schedule, ``prefect deployment run``) has parameters instead, so
its errors must name the parameter and how to set it, not a flag its operator never typed.
"""

from __future__ import annotations

import re

from patchfleet.errors import ConfigError, PatchfleetError

__all__ = ["FLAG_PARAMETERS", "for_deployment"]

FLAG_PARAMETERS = {
    "--inventory": "inventory", "--targets": "targets", "--baseline": "baseline_override",
    "--baselines-dir": "baselines_dir", "--store": "store", "--concurrency": "concurrency",
    "--batch-size": "batch_size", "--lock-timeout": "lock_timeout",
    "--report-dir": "report_dir", "--reboot-option": "reboot_option",
    "--install-override-list": "install_override_list", "--hooks": "hooks",
    "--max-concurrency": "max_concurrency", "--max-errors": "max_errors",
    "--snapshot-id": "snapshot_id",
}
"""``patchfleet scan|install`` flag -> the ``patch-nodes`` flow parameter it sets."""
_FLAG = re.compile(r"--[a-z][a-z-]*")


def _param(flag: str) -> str:
    name = FLAG_PARAMETERS.get(flag)
    return f"the deployment parameter `{name}`" if name else flag


def _message(text: str) -> str:
    text = text.replace("pass an existing inventory with --inventory",
                        "set the deployment parameter `inventory` to an existing file (`prefect "
                        "deployment run NAME -p inventory=FILE`, or PATCHFLEET_INVENTORY when "
                        "running `prefect deploy`)")
    return _FLAG.sub(lambda m: _param(m.group(0)), text)


def for_deployment(error: PatchfleetError, deployment: str | None = None) -> str:
    """``error`` as one line for the log of a deployment run: parameters, not flags."""
    if isinstance(error, ConfigError):
        source = error.source
        if source in FLAG_PARAMETERS:
            source = f"parameter {FLAG_PARAMETERS[source]}"
        text = str(ConfigError(_message(error.message), source=source, field=error.field))
    else:
        text = _message(str(error))
    first = text.splitlines()[0] if text else type(error).__name__
    return f"{deployment + ': ' if deployment else ''}{first}"
