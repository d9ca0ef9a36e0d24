"""Run a command in a real pseudo-terminal of a given size and capture what it printed, so
tests see what an operator's terminal sees (rich picks colours, width and live display from
the terminal, not from a pipe)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from dataclasses import dataclass

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


@dataclass
class PtyResult:
    returncode: int
    raw: str
    """Everything the terminal got, escape sequences included."""

    @property
    def text(self) -> str:
        """The output without escape sequences and carriage returns."""
        return ANSI.sub("", self.raw)


def run_in_pty(argv: list[str], columns: int, env: dict[str, str], cwd: str | None = None,
               timeout: float = 180, rows: int = 50) -> PtyResult:
    """Run ``argv`` with stdin, stdout and stderr on a new pty ``columns`` wide."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                            start_new_session=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
            if time.monotonic() > deadline:
                proc.kill()
                raise TimeoutError(f"{argv} ran longer than {timeout}s")
        rc = proc.wait(timeout=30)
    finally:
        os.close(master)
    return PtyResult(rc, b"".join(chunks).decode("utf-8", "replace"))
