"""Is the Prefect API the CLI is pointed at answering? Checked before a run starts, so a
stopped server is one line with the fix (exit 1) instead of Prefect's retries and a traceback
ending in ``RuntimeError: Failed to reach API``."""

from __future__ import annotations

import os
import urllib.error
import urllib.request

from patchfleet.errors import PatchfleetError

__all__ = ["PrefectUnreachable", "check_api"]


class PrefectUnreachable(PatchfleetError):
    """PREFECT_API_URL is set but no Prefect server answers there."""


def check_api(timeout: float = 5.0) -> None:
    """Raise :class:`PrefectUnreachable` when ``PREFECT_API_URL`` is set and its ``/health``
    doesn't answer 200. Unset: Prefect starts a temporary server, nothing to check."""
    url = os.environ.get("PREFECT_API_URL", "").rstrip("/")
    if not url:
        return
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as r:
            if r.status == 200:
                return
            problem = f"HTTP {r.status}"
    except urllib.error.HTTPError as e:
        problem = f"HTTP {e.code}"
    except (urllib.error.URLError, OSError, ValueError) as e:
        problem = str(getattr(e, "reason", e))
    raise PrefectUnreachable(
        f"the Prefect API at {url} does not answer ({problem}); start the server "
        "(`prefect server start`) or fix PREFECT_API_URL, or unset it to run on a temporary "
        "local server")
