"""The one exception hierarchy of patchfleet.

Every error a user can see derives from :class:`PatchfleetError` and carries a message that says
what went wrong *and how to fix it*. The tree::

    PatchfleetError
    ├── InputError                 bad input: exit non-zero before anything is written
    │   ├── ConfigError            an inventory, baseline, flag or schedule is invalid
    │   └── UnknownBaselineError   a baseline name that no file defines
    ├── StoreError                 the compliance store can't be read or written
    ├── PublishError               reports could not be uploaded to S3             (either)
    ├── DeployError                the Prefect server refused or can't be reached
    └── NodeError                  one node failed; recorded per node, the run goes on
        ├── ConnectError           refused, unreachable, DNS, connect timeout      (transient)
        ├── AuthError              key rejected, no usable key                     (terminal)
        ├── HostKeyError           unknown or changed host key                     (terminal)
        ├── CommandTimeout         a command exceeded its timeout                  (transient)
        ├── CommandError           a command exited non-zero in a way we don't accept
        ├── LockError              the package manager's lock stayed held          (transient)
        ├── NodeBusyError          another patchfleet run is installing on the node (transient)
        ├── OutputLimitError       a command printed more than the output limit    (terminal)
        ├── ParseError             a parser met a line it doesn't understand       (terminal)
        ├── UnsupportedOSError     the node's OS is not one patchfleet supports    (terminal)
        └── SourceError            a baseline's alternative source failed to refresh (terminal)

``transient`` errors may succeed when retried (Prefect retry conditions use it); terminal ones
won't.
Errors pickle (they cross Prefect task boundaries), so every constructor argument is stored in
``args``.
"""

from __future__ import annotations


class PatchfleetError(Exception):
    """Base of every patchfleet error."""

    transient: bool = False

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class InputError(PatchfleetError):
    """Bad user input; the command exits non-zero before writing anything."""


class ConfigError(InputError):
    """An inventory, baseline, schedule or flag is invalid.

    ``source`` names the file (or flag), ``field`` the dotted path of the bad value.
    """

    def __init__(self, message: str, source: str | None = None, field: str | None = None) -> None:
        super().__init__(message, source, field)
        self.message = message
        self.source = source
        self.field = field

    def __str__(self) -> str:
        where = ": ".join(part for part in (self.source, self.field) if part)
        return f"{where}: {self.message}" if where else self.message


class UnknownBaselineError(InputError):
    """A baseline name that no loaded baseline file defines."""


class QueryError(InputError):
    """SQL for ``patchfleet query`` that is not one valid, read-only SELECT."""


class StoreError(PatchfleetError):
    """The compliance store can't be read or written."""


class PublishError(PatchfleetError):
    """Uploading reports to S3 failed (no bucket, access denied, no credentials, no endpoint).

    ``transient`` is set per error: an unreachable endpoint may answer later, a missing bucket
    won't.
    """

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message, transient)
        self.transient = transient


class DeployError(PatchfleetError):
    """Registering deployments with the Prefect server failed (no server, no work pool, ...)."""


class NodeError(PatchfleetError):
    """One node failed. Recorded per node with its reason; the run goes on."""

    reason_code: str = "ERROR"

    def __init__(self, message: str, node_id: str | None = None) -> None:
        super().__init__(message, node_id)
        self.message = message
        self.node_id = node_id

    def __str__(self) -> str:
        return self.message

    @property
    def reason(self) -> str:
        """Short machine-readable reason code plus the message, as stored in failure_reason."""
        return f"{self.reason_code}: {self.message}"


class ConnectError(NodeError):
    transient = True
    reason_code = "UNREACHABLE"


class AuthError(NodeError):
    reason_code = "AUTH_FAILED"


class HostKeyError(NodeError):
    reason_code = "HOST_KEY"


class CommandTimeout(NodeError):
    transient = True
    reason_code = "TIMEOUT"


class CommandError(NodeError):
    reason_code = "COMMAND_FAILED"


class LockError(NodeError):
    transient = True
    reason_code = "LOCKED"


class NodeBusyError(NodeError):
    """Another patchfleet run holds the node's install lock (and kept it past the wait)."""

    transient = True
    reason_code = "BUSY"


class OutputLimitError(NodeError):
    reason_code = "OUTPUT_LIMIT"


class ParseError(NodeError):
    """A parser met input it does not understand. Never skipped: a dropped line could hide a
    missing patch and make a node look compliant."""

    reason_code = "PARSE_ERROR"

    def __init__(
        self, message: str, tool: str = "", line_no: int | None = None, line: str | None = None
    ) -> None:
        detail = message
        if tool:
            detail = f"{tool}: {detail}"
        if line_no is not None:
            detail += f" (line {line_no}: {line!r})"
        super().__init__(detail)
        self.args = (message, tool, line_no, line)
        self.tool = tool
        self.line_no = line_no
        self.line = line

    def __reduce__(self) -> tuple[type[ParseError], tuple[str, str, int | None, str | None]]:
        return (ParseError, (self.args[0], self.tool, self.line_no, self.line))


class UnsupportedOSError(NodeError):
    reason_code = "UNSUPPORTED_OS"


class SourceError(NodeError):
    """A baseline's alternative source could not be set up or refreshed on the node: its
    packages are unknown, so the node is not judged (nor installed) without it."""

    reason_code = "SOURCE_FAILED"
