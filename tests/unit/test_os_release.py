"""os-release -> AWS OperatingSystem, PRODUCT and package manager.

Files under tests/cases/os-release/ are real distributions' os-release files (sources in the
README there); the test nodes' own captures are checked in test_parsers_rpm/_zypper and by
the golden files. A few mappings no file covers (RHEL 9, Amazon Linux 2022) are checked on the
parsed fields directly.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from patchfleet.domain.facts import PackageManager
from patchfleet.errors import ParseError, UnsupportedOSError
from patchfleet.parsers import os_release

CASES = Path(__file__).resolve().parents[1] / "cases" / "os-release"
DNF, YUM, ZYPPER = PackageManager.DNF, PackageManager.YUM, PackageManager.ZYPPER


def info_of(name: str) -> tuple[str, str, PackageManager]:
    info = os_release.os_info(os_release.parse_os_release((CASES / name).read_text()))
    return info.operating_system, info.product, info.package_manager


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("rhel7.0", ("REDHAT_ENTERPRISE_LINUX", "RedhatEnterpriseLinux7.0", YUM)),
        ("rocky8.4", ("ROCKY_LINUX", "RockyLinux8.4", DNF)),
        ("almalinux8.3", ("ALMA_LINUX", "AlmaLinux8.3", DNF)),
        ("ol7.5", ("ORACLE_LINUX", "OracleLinux7.5", YUM)),
        ("centos7", ("CENTOS", "CentOS7", YUM)),
        ("centos-stream8", ("CENTOS", "CentOSStream8", DNF)),
        ("amzn2", ("AMAZON_LINUX_2", "AmazonLinux2", YUM)),
        ("amzn2016.03", ("AMAZON_LINUX", "AmazonLinux2016.03", YUM)),
        ("sles12.1", ("SUSE", "Suse12.1", ZYPPER)),
        ("sles15.6", ("SUSE", "Suse15.6", ZYPPER)),
        ("opensuse-leap15.2", ("SUSE", "Suse15.2", ZYPPER)),
    ],
)
def test_real_os_release_files(name: str, expected: tuple[str, str, PackageManager]) -> None:
    assert info_of(name) == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"ID": "rhel", "VERSION_ID": "9.5"},
         ("REDHAT_ENTERPRISE_LINUX", "RedhatEnterpriseLinux9.5", DNF)),
        ({"ID": "rhel", "VERSION_ID": "10.0"},
         ("REDHAT_ENTERPRISE_LINUX", "RedhatEnterpriseLinux10.0", DNF)),
        ({"ID": "ol", "VERSION_ID": "9.5"}, ("ORACLE_LINUX", "OracleLinux9.5", DNF)),
        ({"ID": "centos", "NAME": "CentOS Stream", "VERSION_ID": "9"},
         ("CENTOS", "CentOSStream9", DNF)),
        ({"ID": "amzn", "VERSION_ID": "2022"}, ("AMAZON_LINUX_2022", "AmazonLinux2022", DNF)),
        ({"ID": "amzn", "VERSION_ID": "2023"}, ("AMAZON_LINUX_2023", "AmazonLinux2023", DNF)),
        ({"ID": "sles_sap", "VERSION_ID": "15.6"}, ("SUSE", "Suse15.6", ZYPPER)),
    ],
)
def test_mapping_of_versions_no_file_covers(
    fields: dict[str, str], expected: tuple[str, str, PackageManager]
) -> None:
    info = os_release.os_info(fields)
    assert (info.operating_system, info.product, info.package_manager) == expected


def test_fields_are_kept() -> None:
    info = os_release.os_info(os_release.parse_os_release((CASES / "sles15.6").read_text()))
    assert (info.id, info.version_id, info.id_like, info.pretty_name) == (
        "sles", "15.6", ("suse",), "SUSE Linux Enterprise Server 15 SP6")


def test_trailing_blanks_after_quoted_values_parse() -> None:
    fields = os_release.parse_os_release((CASES / "almalinux8.3").read_text())
    assert fields["ALMALINUX_MANTISBT_PROJECT_VERSION"] == "8"


def test_fedora_is_unsupported_with_the_reason() -> None:
    with pytest.raises(UnsupportedOSError, match="no Fedora operating system"):
        info_of("fedora30")


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"ID": "opensuse-tumbleweed", "VERSION_ID": "20250101"}, "rolling"),
        ({"ID": "gentoo", "PRETTY_NAME": "Gentoo Linux"}, "Gentoo Linux .* not a supported OS"),
        ({"ID": "amzn", "VERSION_ID": "2027"}, "newer Amazon Linux"),
        ({"ID": "rocky"}, "no VERSION_ID"),
        ({"ID": "rhel", "VERSION_ID": "rawhide"}, "not a release number"),
    ],
)
def test_unsupported(fields: dict[str, str], match: str) -> None:
    with pytest.raises(UnsupportedOSError, match=match):
        os_release.os_info(fields)


def test_damaged_file_raises() -> None:
    text = (CASES / "sles15.6").read_text().replace('ID="sles"', 'ID="sles')
    with pytest.raises(ParseError, match="bad quoting"):
        os_release.parse_os_release(text)
