"""ASFF building blocks: the severity label and the account/region checks."""

from __future__ import annotations

import pytest

from patchfleet.errors import ConfigError
from patchfleet.report.asff import check_target, severity_label


def test_severity_is_the_highest_level_with_a_noncompliant_patch() -> None:
    assert severity_label({"CRITICAL": 0, "HIGH": 2, "LOW": 5}) == "HIGH"
    assert severity_label({"INFORMATIONAL": 1}) == "INFORMATIONAL"
    assert severity_label({"UNSPECIFIED": 7}) == "INFORMATIONAL"  # no ASFF label of its own
    assert severity_label({}) == "INFORMATIONAL"


@pytest.mark.parametrize(("account", "region", "flag"), [
    ("12345678901", "eu-west-1", "--account-id"), ("1234567890123", "eu-west-1", "--account-id"),
    ("12345678901x", "eu-west-1", "--account-id"), ("123456789012", "europe", "--region"),
    ("123456789012", "EU-WEST-1", "--region"), ("123456789012", "", "--region"),
])
def test_account_and_region_must_be_awss(account: str, region: str, flag: str) -> None:
    with pytest.raises(ConfigError, match=flag):
        check_target(account, region)
    check_target("123456789012", "us-gov-west-1")
