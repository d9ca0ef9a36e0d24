"""Package version ordering, exactly as dpkg and rpm order them.

``dpkg_compare`` follows deb-version(7) and dpkg's ``lib/dpkg/version.c``; ``rpm_compare`` follows
rpm's ``rpmvercmp`` and ``rpmverCmp`` (rpm >= 4.16: an EVR with no release sorts before one with a
release). Both are checked against the real tools on thousands of generated pairs
(``tests/cases/versions/``). Every comparison returns -1, 0 or 1.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = [
    "DebVersion",
    "Evr",
    "dpkg_compare",
    "dpkg_key",
    "parse_dpkg_version",
    "parse_evr",
    "rpm_compare",
    "rpm_key",
    "rpmvercmp",
]


def _sign(n: int) -> int:
    return (n > 0) - (n < 0)


# --------------------------------------------------------------------------------------------
# dpkg


class DebVersion(NamedTuple):
    """``[epoch:]upstream[-revision]``; a missing revision is ``""`` (which equals ``"0"``)."""

    epoch: int
    upstream: str
    revision: str

    def __str__(self) -> str:
        epoch = f"{self.epoch}:" if self.epoch else ""
        revision = f"-{self.revision}" if self.revision else ""
        return f"{epoch}{self.upstream}{revision}"


def parse_dpkg_version(version: str) -> DebVersion:
    """Split a Debian version. Raises ValueError where dpkg reports an error.

    Like dpkg, a version that merely *warns* (upstream not starting with a digit, odd characters)
    is still accepted and compared.
    """
    s = version.strip(" \t")
    if not s:
        raise ValueError("version string is empty")
    if any(c in " \t" for c in s):
        raise ValueError(f"version {version!r} has embedded spaces")
    epoch = 0
    colon = s.find(":")
    if colon >= 0:
        head = s[:colon]
        if not head:
            raise ValueError(f"epoch in version {version!r} is empty")
        if not (head.isascii() and head.isdigit()):
            raise ValueError(f"epoch in version {version!r} is not a number")
        epoch = int(head)
        if epoch > 2**31 - 1:
            raise ValueError(f"epoch in version {version!r} is too big")
        s = s[colon + 1 :]
        if not s:
            raise ValueError(f"nothing after colon in version {version!r}")
    upstream, hyphen, revision = s.rpartition("-")
    if not hyphen:
        upstream, revision = s, ""
    elif not revision:
        raise ValueError(f"revision number is empty in version {version!r}")
    if not upstream:
        raise ValueError(f"version number is empty in version {version!r}")
    return DebVersion(epoch, upstream, revision)


_parse_cached = functools.lru_cache(maxsize=65536)(parse_dpkg_version)


def _order(c: str) -> int:
    # Weight of one non-digit character: '~' below the end of string, letters below the rest.
    if c == "~":
        return -1
    if "A" <= c <= "Z" or "a" <= c <= "z":
        return ord(c)
    return ord(c) + 256


def _isdigit(c: str) -> bool:
    return "0" <= c <= "9"


def _verrevcmp(a: str, b: str) -> int:
    if a == b:
        return 0
    i = j = 0
    la, lb = len(a), len(b)
    while i < la or j < lb:
        # The non-digit prefix, character by character; the end of string weighs 0.
        while (i < la and not _isdigit(a[i])) or (j < lb and not _isdigit(b[j])):
            ac = 0 if i >= la or _isdigit(a[i]) else _order(a[i])
            bc = 0 if j >= lb or _isdigit(b[j]) else _order(b[j])
            if ac != bc:
                return _sign(ac - bc)
            i += 1
            j += 1
        while i < la and a[i] == "0":
            i += 1
        while j < lb and b[j] == "0":
            j += 1
        first_diff = 0
        while i < la and j < lb and _isdigit(a[i]) and _isdigit(b[j]):
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < la and _isdigit(a[i]):
            return 1
        if j < lb and _isdigit(b[j]):
            return -1
        if first_diff:
            return _sign(first_diff)
    return 0


def dpkg_compare(a: str | DebVersion, b: str | DebVersion) -> int:
    """Compare two Debian versions like ``dpkg --compare-versions``: -1, 0 or 1."""
    if a == b:
        return 0
    if isinstance(a, str) and isinstance(b, str):
        return _compare_cached(a, b)
    return _compare(a, b)


def _compare(a: str | DebVersion, b: str | DebVersion) -> int:
    va = a if isinstance(a, DebVersion) else _parse_cached(a)
    vb = b if isinstance(b, DebVersion) else _parse_cached(b)
    if va.epoch != vb.epoch:
        return 1 if va.epoch > vb.epoch else -1
    return _verrevcmp(va.upstream, vb.upstream) or _verrevcmp(va.revision, vb.revision)


_compare_cached = functools.lru_cache(maxsize=65536)(_compare)
"""A fleet's nodes compare the same version pairs again and again (about 2,000 per node)."""

dpkg_key: Callable[[str], Any] = functools.cmp_to_key(dpkg_compare)
"""Sort key: ``sorted(versions, key=dpkg_key)``, ``max(versions, key=dpkg_key)``."""


# --------------------------------------------------------------------------------------------
# rpm


class Evr(NamedTuple):
    """``[epoch:]version[-release]`` as rpm splits it. ``None`` means the part was absent."""

    epoch: str | None
    version: str
    release: str | None

    @property
    def epoch_int(self) -> int:
        return int(self.epoch) if self.epoch else 0

    def __str__(self) -> str:
        epoch = f"{self.epoch}:" if self.epoch is not None else ""
        release = f"-{self.release}" if self.release is not None else ""
        return f"{epoch}{self.version}{release}"


def parse_evr(evr: str) -> Evr:
    """Split an EVR string exactly as rpm's ``rpmverParse`` does.

    The epoch is recognised only as leading digits followed by ``:`` (an empty one means 0); the
    release is whatever follows the last ``-`` after those digits.
    """
    if not evr:
        raise ValueError("EVR string is empty")
    k = 0
    while k < len(evr) and _isdigit(evr[k]):
        k += 1
    dash = evr.rfind("-", k)
    epoch: str | None = None
    start = 0
    if k < len(evr) and evr[k] == ":":
        epoch = evr[:k] or "0"
        start = k + 1
    if dash >= 0:
        return Evr(epoch, evr[start:dash], evr[dash + 1 :])
    return Evr(epoch, evr[start:], None)


def _rpm_alpha(c: str) -> bool:
    return "A" <= c <= "Z" or "a" <= c <= "z"


def _rpm_alnum(c: str) -> bool:
    return _rpm_alpha(c) or _isdigit(c)


def rpmvercmp(a: str, b: str) -> int:
    """rpm's segmented comparison of one version or release string: -1, 0 or 1."""
    if a == b:
        return 0
    i = j = 0
    la, lb = len(a), len(b)
    while i < la or j < lb:
        while i < la and not _rpm_alnum(a[i]) and a[i] not in "~^":
            i += 1
        while j < lb and not _rpm_alnum(b[j]) and b[j] not in "~^":
            j += 1
        ca = a[i] if i < la else ""
        cb = b[j] if j < lb else ""
        # '~' sorts before everything, even the end of the string.
        if ca == "~" or cb == "~":
            if ca != "~":
                return 1
            if cb != "~":
                return -1
            i += 1
            j += 1
            continue
        # '^' sorts after the end of the string but before anything else.
        if ca == "^" or cb == "^":
            if not ca:
                return -1
            if not cb:
                return 1
            if ca != "^":
                return 1
            if cb != "^":
                return -1
            i += 1
            j += 1
            continue
        if not (ca and cb):
            break
        si, sj = i, j
        if _isdigit(ca):
            while i < la and _isdigit(a[i]):
                i += 1
            while j < lb and _isdigit(b[j]):
                j += 1
            isnum = True
        else:
            while i < la and _rpm_alpha(a[i]):
                i += 1
            while j < lb and _rpm_alpha(b[j]):
                j += 1
            isnum = False
        seg_a, seg_b = a[si:i], b[sj:j]
        if not seg_b:
            # Segments of different types: numeric is newer than alpha.
            return 1 if isnum else -1
        if isnum:
            seg_a = seg_a.lstrip("0")
            seg_b = seg_b.lstrip("0")
            if len(seg_a) != len(seg_b):
                return 1 if len(seg_a) > len(seg_b) else -1
        if seg_a != seg_b:
            return 1 if seg_a > seg_b else -1
    if i >= la and j >= lb:
        return 0
    return -1 if i >= la else 1


def _compare_values(a: str | None, b: str | None) -> int:
    if a is None or b is None:
        return (a is not None) - (b is not None)
    return rpmvercmp(a, b)


def rpm_compare(a: str | Evr, b: str | Evr) -> int:
    """Compare two EVRs like rpm's ``rpmverCmp`` (what ``rpm.vercmp`` in rpm's Lua does).

    A missing epoch counts as ``0``; a missing release sorts before any release.
    """
    va = a if isinstance(a, Evr) else parse_evr(a)
    vb = b if isinstance(b, Evr) else parse_evr(b)
    return (
        _compare_values(va.epoch or "0", vb.epoch or "0")
        or _compare_values(va.version, vb.version)
        or _compare_values(va.release, vb.release)
    )


rpm_key: Callable[[str], Any] = functools.cmp_to_key(rpm_compare)
"""Sort key for EVR strings."""
