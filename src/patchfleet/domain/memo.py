"""Bounded memos for the fleet's repeated work: the same text parsed, the same package judged.

A fleet is mostly copies of a few images: on 10,000 nodes the stanza ``openssl:\\n  Installed:
3.0.15-1~deb12u1 ...`` is printed 10,000 times, and each copy becomes the same record under the
same baseline. Parsing and evaluation are pure, so their results can be reused; these memos make
that safe and bounded:

- :class:`TextMemo` maps a piece of text (a stanza, a line) to what it parses into. Equal text
  gives the *same* object, so later stages can key on identity.
- :class:`IdentityMemo` maps a tuple of objects, compared by identity, to a result. It keeps the
  objects alive beside the result and checks them on every hit, so an ``id()`` reused after a
  collection can never return another object's result.

Both forget everything when they reach ``max_entries`` (a whole fleet of unique nodes costs the
same memory as one full memo, and parsing then just runs as if there were no memo). They hold no
locks: a race at worst computes a value twice, and CPython's dict operations are atomic.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["IdentityMemo", "TextMemo"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DEFAULT_MAX_ENTRIES = 50_000


class TextMemo(Generic[K, V]):
    """``key -> value`` for a pure function of ``key``, forgotten wholesale at ``max_entries``."""

    __slots__ = ("_data", "max_entries")

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._data: dict[K, V] = {}
        self.max_entries = max_entries

    def find(self, key: K) -> V | None:
        """The value stored for ``key``, or None."""
        return self._data.get(key)

    def put(self, key: K, value: V) -> V:
        """Store ``value`` (the pure function's result for ``key``) and return it."""
        if len(self._data) >= self.max_entries:
            self._data.clear()
        self._data[key] = value
        return value

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()


class IdentityMemo(Generic[V]):
    """A result per (plain key, tuple of objects): the key by equality, the objects by identity.

    Hashing deep frozen dataclasses on every lookup would cost about as much as the work saved;
    identity is free once equal text yields one object (:class:`TextMemo`).
    """

    __slots__ = ("_data", "max_entries")

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._data: dict[tuple[Hashable, ...], tuple[tuple[object, ...], V]] = {}
        self.max_entries = max_entries

    def lookup(self, key: Hashable, objects: tuple[object, ...]) -> V | None:
        """The stored result for ``key`` and exactly these objects, or None."""
        hit = self._data.get((key, *map(id, objects)))
        if hit is None:
            return None
        kept, value = hit
        for old, new in zip(kept, objects, strict=True):
            if old is not new:
                return None
        return value

    def store(self, key: Hashable, objects: tuple[object, ...], value: V) -> V:
        if len(self._data) >= self.max_entries:
            self._data.clear()
        self._data[(key, *map(id, objects))] = (objects, value)
        return value

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()
