"""What tasks hand each other: small values and handles, and :class:`Opaque` for the rest.

Before a task runs, Prefect walks every parameter that is a collection, a dataclass or a
pydantic model (``visit_collection``, looking for futures to resolve). Passing each task the
run's node list, baseline registry and scan options made Prefect walk thousands of objects per
task; passing node results with their records cost more than the scan itself. Tasks therefore
exchange handles (a staging area, a store path, counts), and in-memory inputs that are large go
in an :class:`Opaque`, a leaf Prefect does not enter (the task reads ``.value``).
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Opaque(Generic[T]):
    """``value`` handed to a task as it is, without Prefect walking into it."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Opaque({type(self.value).__name__})"
