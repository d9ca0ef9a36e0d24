"""A baseline's alternative source on a node, for the duration of one operation (spec §1.6).

AWS replaces a node's repositories with the baseline's ``sources`` entry for its product during
a Scan or Install and leaves the node's own configuration as it was. patchfleet does it without
touching that configuration at all: :func:`node_source` creates a private directory on the node
(``mktemp -d /var/tmp/patchfleet-source.XXXXXXXXXX``), writes the source's configuration there
and creates the empty directories the package manager is pointed at instead of its own (source
list, parts and lists for apt; repos.d and cache for dnf and zypper); every command of the
operation then goes through a :class:`SourcedTransport`, which lets the manager rewrite it to use
that directory (apt ``-o Dir::...``, dnf ``--setopt=reposdir=``, zypper ``--reposd-dir``). The
directory is removed when the operation ends, failed or not.

The configuration text reaches the node as a positional argument of a constant script (shell-
quoted like every other part, never spliced into the script), and the directory path read back
is checked against :data:`SOURCE_DIR_RE` before any command names it. A directory whose
cleanup never ran (the connection dropped) is removed by the next preparation on that node once
it is a day old.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from types import TracebackType

from patchfleet.domain.baseline import PatchSource
from patchfleet.errors import NodeError, SourceError
from patchfleet.transport.base import Command, CommandResult, Transport, script

log = logging.getLogger(__name__)

SOURCE_DIR_RE = re.compile(r"^/var/tmp/patchfleet-source\.[A-Za-z0-9]{10}$")
"""What ``mktemp`` prints for :data:`PREPARE_SCRIPT`; nothing else is ever removed."""

# Arguments: "dir REL" creates a directory, "file REL TEXT" writes TEXT and a newline (paths
# relative to the new directory, in order). World-readable like /etc/apt and
# /var/lib/apt/lists, so apt's _apt sandbox and unprivileged read-only probes can read it; only
# root writes it. First, directories left more than a day ago by an operation whose connection
# dropped before its cleanup are removed (no operation runs that long).
PREPARE_SCRIPT = (
    "find /var/tmp -maxdepth 1 -type d -name 'patchfleet-source.??????????' -mmin +1440 "
    "-exec rm -rf -- {} + 2>/dev/null\n"
    'd=$(mktemp -d /var/tmp/patchfleet-source.XXXXXXXXXX) || exit 1\n'
    'if (umask 022; while [ $# -gt 0 ]; do case $1 in\n'
    '  dir) mkdir -p -- "$d/$2" || exit 1; shift 2 ;;\n'
    '  file) printf \'%s\\n\' "$3" > "$d/$2" || exit 1; shift 3 ;;\n'
    '  *) exit 1 ;;\n'
    'esac; done) && chmod 755 "$d"; then echo "$d"; else rm -rf -- "$d"; exit 1; fi'
)

Rewrite = Callable[[Command], Command]


@dataclass(frozen=True, slots=True)
class SourceLayout:
    """What one package manager needs in the source's directory."""

    config_file: str
    """Where the configuration text goes, relative to the directory."""
    dirs: tuple[str, ...]
    """Empty directories to create first (relative; the config file's own folder included)."""
    files: tuple[tuple[str, str], ...]
    """Constant files of patchfleet's own: (relative path, text)."""
    rewrite: Callable[[str], Rewrite]
    """The directory's path -> how each command of the operation is changed to use it."""


def prepare_command(layout: SourceLayout, source: PatchSource) -> Command:
    """The command that creates the directory, writes ``source``'s configuration and prints
    the directory's path."""
    args: list[str] = []
    for rel in layout.dirs:
        args += ["dir", rel]
    for rel, text in ((layout.config_file, source.configuration), *layout.files):
        args += ["file", rel, text]
    return Command(
        script(PREPARE_SCRIPT, *args),
        privileged=True,
        name="source-prepare",
    )


def cleanup_command(path: str) -> Command:
    """``rm -rf -- PATH`` for a directory :func:`prepare_command` created (checked)."""
    if not SOURCE_DIR_RE.match(path):
        raise ValueError(f"refusing to remove {path!r}: not a patchfleet source directory")
    return Command(("rm", "-rf", "--", path), privileged=True, name="source-cleanup")


def insert_after_program(command: Command, options: tuple[str, ...]) -> Command:
    """``command`` with ``options`` right after the program name (global options)."""
    shifted = None if command.variable_from is None else command.variable_from + len(options)
    return replace(command, argv=(command.argv[0], *options, *command.argv[1:]),
                   variable_from=shifted)


class SourcedTransport:
    """The operation's transport, with every command rewritten to use the source's
    directory. Opening and closing stay with the transport it wraps."""

    def __init__(self, inner: Transport, rewrite: Rewrite, source: PatchSource) -> None:
        self.inner = inner
        self.rewrite = rewrite
        self.source = source
        self.node_id = inner.node_id

    @property
    def is_root(self) -> bool:
        return self.inner.is_root

    async def run(self, command: Command) -> CommandResult:
        return await self.inner.run(self.rewrite(command))

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> SourcedTransport:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        return None


def _tail(result: CommandResult) -> str:
    err = result.stderr.strip() or result.stdout.strip()
    return " | ".join(err.splitlines()[-3:])[:500] or f"exit {result.exit_status}"


@asynccontextmanager
async def node_source(transport: Transport, source: PatchSource | None, layout: SourceLayout
                      ) -> AsyncIterator[Transport]:
    """``transport`` itself without a source; with one, a :class:`SourcedTransport` over a
    fresh source directory, removed on exit (a removal that fails is logged: the connection
    is gone, and the directory stays in /var/tmp)."""
    if source is None:
        yield transport
        return
    result = await transport.run(prepare_command(layout, source))
    path = result.stdout.strip()
    if result.exit_status != 0 or not SOURCE_DIR_RE.match(path):
        raise SourceError(f"source {source.name!r} could not be set up on the node: "
                          f"{_tail(result)}", transport.node_id)
    try:
        yield SourcedTransport(transport, layout.rewrite(path), source)
    finally:
        try:
            done = await transport.run(cleanup_command(path))
            if done.exit_status != 0:
                log.warning("%s: could not remove %s: %s", transport.node_id, path, _tail(done))
        except NodeError as err:
            log.warning("%s: could not remove %s: %s", transport.node_id, path, err)
