"""Unit tests start no servers, kernels or flows: those belong in tests/integration.

Enforced while each unit test's fixtures are set up and while it runs (not for other folders):

- a test that asks for a server fixture of ``tests/conftest.py`` fails before the server starts;
- listening on a socket fails: an http.server, moto's server, an asyncssh server or an in-process
  Prefect server all listen;
- starting a known server program fails: sshd, uvicorn (a Prefect server or the ephemeral API a
  flow run starts on its own), a Jupyter kernel, moto_server, and the ``patchfleet`` and
  ``prefect`` commands (the CLI runs flows).

The failure is :func:`pytest.fail`, which ``except Exception`` does not swallow.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

SERVER_FIXTURES = frozenset({"prefect_api", "moto_endpoint"})
SERVER_PROGRAMS = frozenset({"sshd", "uvicorn", "ipykernel_launcher", "ipykernel", "moto_server",
                             "jupyter", "patchfleet", "prefect"})
MOVE = "move this test to tests/integration/ (unit tests start no servers, kernels or flows)"


def _programs(args: object, shell: bool) -> set[str]:
    """What a Popen call starts: the program's name, and the module of ``python -m MODULE``."""
    if isinstance(args, str | bytes | os.PathLike):
        text = os.fsdecode(args)
        words: list[str] = text.split() if shell else [text]
    elif isinstance(args, Sequence):
        words = [os.fsdecode(w) for w in args if isinstance(w, str | bytes | os.PathLike)]
    else:
        return set()
    found = {Path(words[0]).name} if words else set()
    if "-m" in words[:-1]:
        found.add(words[words.index("-m") + 1].split(".")[0])
    return found


@contextlib.contextmanager
def _no_servers() -> Iterator[None]:
    real_popen_init = subprocess.Popen.__init__

    def guarded_popen_init(self: subprocess.Popen[Any], args: Any, *a: Any, **kw: Any) -> None:
        started = _programs(args, bool(kw.get("shell"))) & SERVER_PROGRAMS
        if started:
            pytest.fail(f"a unit test started {', '.join(sorted(started))}: {MOVE}",
                        pytrace=False)
        real_popen_init(self, args, *a, **kw)

    def guarded_listen(self: socket.socket, *a: Any) -> None:
        pytest.fail(f"a unit test listened on {self.getsockname()}: it runs a server; {MOVE}",
                    pytrace=False)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "__init__", guarded_popen_init)
        patch.setattr(socket.socket, "listen", guarded_listen)
        yield


@pytest.hookimpl(wrapper=True, trylast=True)  # inside pytest's own wrappers
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    servers = SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))
    if servers:
        pytest.fail(f"{item.nodeid} uses {', '.join(sorted(servers))}: {MOVE}", pytrace=False)
    with _no_servers():
        return (yield)


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with _no_servers():
        return (yield)
