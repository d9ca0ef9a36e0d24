"""The connector a run reaches its nodes with: real nodes unless a caller says otherwise.

A flow opens one connector per run (:func:`open_connector`) and passes it to the tasks that
contact nodes; the SSH keys are therefore loaded once per run. Tests and benchmarks run the real
flows against a replayed or simulated fleet by choosing the factory for the duration of a block::

    with connector_factory(lambda: ReplayConnector.fleet(case_dir)):
        summary = await patch_nodes(...)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

from patchfleet.transport import Connector
from patchfleet.transport.connector import SSHConnector

ConnectorFactory = Callable[[], Connector]

_FACTORY: ContextVar[ConnectorFactory] = ContextVar("patchfleet_connector_factory",
                                                    default=SSHConnector)


def open_connector() -> Connector:
    """A new connector for one run (close it at the end of the run)."""
    return _FACTORY.get()()


@contextlib.contextmanager
def connector_factory(factory: ConnectorFactory) -> Iterator[None]:
    """Runs started inside the block reach their nodes through ``factory()``'s connectors."""
    token = _FACTORY.set(factory)
    try:
        yield
    finally:
        _FACTORY.reset(token)
