"""Messages for pydantic's "unknown key" errors that name the key and list the allowed ones.

pydantic reports ``extra_forbidden`` as "Extra inputs are not permitted". Every patchfleet file
model forbids unknown keys (a typo must not be ignored silently), so the message says which
key, suggests the closest allowed one, and lists them all.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

__all__ = ["allowed_keys", "short_repr", "unknown_key_message"]

_SHOWN = 60


def short_repr(value: object) -> str:
    """``repr(value)``, cut to a readable length (a value from a file may be huge)."""
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation holds: itself, or inside Optional/list/tuple/dict/Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is None and not isinstance(annotation, types.UnionType):
        return []
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        args = args[:1]
    return [m for arg in args for m in _models_in(arg)]


def allowed_keys(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The field names of the model at ``loc`` (a pydantic error location, the unknown key
    last), or [] when the path leads to no model."""
    current: list[type[BaseModel]] = [model]
    for part in loc[:-1]:
        if isinstance(part, str) and any(part in m.model_fields for m in current):
            current = [inner for m in current if part in m.model_fields
                       for inner in _models_in(m.model_fields[part].annotation)]
            if not current:
                return []
        # else a list index or a dict key: the same models hold the next part
    return list(current[0].model_fields)

def unknown_key_message(model: type[BaseModel], loc: Sequence[int | str],
                        also_allowed: Sequence[str] = ()) -> str:
    """"unknown key 'hots'; did you mean 'host'? allowed keys: id, host, ...". ``also_allowed``:
    keys the caller took out of the data before validating ``model``."""
    key = str(loc[-1]) if loc else ""
    allowed = allowed_keys(model, loc)
    if allowed and len(loc) == 1:
        allowed += [k for k in also_allowed if k not in allowed]
    if not allowed:
        return f"unknown key {short_repr(key)}; remove it or check its spelling"
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.75)
    hint = f"did you mean {close[0]!r}? " if close else "remove it or check its spelling; "
    return f"unknown key {short_repr(key)}; {hint}allowed keys: {', '.join(allowed)}"
