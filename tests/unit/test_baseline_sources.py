"""Which of a baseline's ``sources`` serves a node: the first whose products match the node's
AWS product (case ignored, ``*`` wildcards), else none (the node's own repositories)."""

from __future__ import annotations

import pytest

from patchfleet.domain.baseline import Baseline, PatchSource


def baseline(*sources: tuple[str, tuple[str, ...]]) -> Baseline:
    return Baseline(
        name="with-sources",
        operating_system="ROCKY_LINUX",
        sources=tuple(PatchSource(name=n, products=p, configuration=f"[{n}]\nbaseurl=file:///x\n")
                      for n, p in sources),
    )


@pytest.mark.parametrize(("product", "expected"), [
    ("RockyLinux9.5", "rocky95"),
    ("rockylinux9.5", "rocky95"),  # AWS product values are matched case-insensitively
    ("RockyLinux9.4", "rocky9"),
    ("RockyLinux8.10", "every"),
])
def test_the_first_matching_source_serves_the_node(product: str, expected: str) -> None:
    b = baseline(("rocky95", ("RockyLinux9.5",)), ("rocky9", ("RockyLinux9.*",)),
                 ("every", ("*",)))
    found = b.source_for(product)
    assert found is not None and found.name == expected


def test_no_matching_source_keeps_the_node_repositories() -> None:
    assert baseline(("rocky8", ("RockyLinux8.*", "RockyLinux8"))).source_for(
        "RockyLinux9.5") is None
    assert baseline().source_for("RockyLinux9.5") is None
