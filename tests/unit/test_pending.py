"""Pending reboots carried across runs by boot id."""

from __future__ import annotations

from patchfleet.domain.pending import PendingInstalls, mark_pending
from patchfleet.domain.records import PatchRecord, PatchState


def rec(name: str, version: str, state: PatchState) -> PatchRecord:
    return PatchRecord(package=name, arch="amd64", installed_version=version,
                       available_version=None, state=state)


RECORDS = (
    rec("fake-curl", "1.1", PatchState.INSTALLED),
    rec("fake-editor", "1.1", PatchState.INSTALLED_OTHER),
    rec("fake-sudo", "1.0", PatchState.MISSING),
    rec("fake-extra", "1.0", PatchState.INSTALLED),
)
PENDING = PendingInstalls("boot-1", frozenset({("fake-curl", "1.1"), ("fake-editor", "1.1"),
                                               ("fake-sudo", "1.1"), ("fake-extra", "1.1")}))


def states(records: tuple[PatchRecord, ...]) -> dict[str, PatchState]:
    return {r.package: r.state for r in records}


def test_same_boot_keeps_what_the_install_left_pending() -> None:
    assert states(mark_pending(RECORDS, PENDING, "boot-1")) == {
        "fake-curl": PatchState.INSTALLED_PENDING_REBOOT,
        "fake-editor": PatchState.INSTALLED_PENDING_REBOOT,
        "fake-sudo": PatchState.MISSING,  # never hides a missing patch
        "fake-extra": PatchState.INSTALLED,  # a different version than the install left
    }


def test_a_new_boot_or_no_history_clears_it() -> None:
    assert mark_pending(RECORDS, PENDING, "boot-2") == RECORDS
    assert mark_pending(RECORDS, None, "boot-1") == RECORDS
    assert mark_pending(RECORDS, PENDING, None) == RECORDS
