"""Parse /etc/os-release (os-release(5)) and derive the AWS operating system and product.

``operating_system`` is AWS's OperatingSystem enum value and ``product`` AWS's PRODUCT filter
value: ``Debian12``, ``Ubuntu22.04``, ``RedhatEnterpriseLinux9.5``, ``RockyLinux9.5``,
``AlmaLinux9.5``, ``OracleLinux9.5``, ``CentOS7``, ``CentOSStream9``, ``AmazonLinux2``,
``AmazonLinux2023``, ``Suse15.6``. An OS patchfleet does not support is a clear
:class:`UnsupportedOSError`, never a guess. Decisions where AWS has no answer:

- **Fedora** is unsupported. AWS has no Fedora OperatingSystem; calling it RHEL would put
  Fedora nodes under RHEL baselines and in RHEL's compliance counts with Bodhi's severities.
- **openSUSE Leap** is scanned as ``SUSE`` with product ``Suse<VERSION_ID>`` (Leap 15.x is
  built from SLE 15 SPx), so SUSE baselines apply. SLES for SAP (``sles_sap``) and SLED
  (``sled``) are SUSE too. Tumbleweed and other rolling releases are unsupported.
- **CentOS 7** os-release carries no minor version, so its product is ``CentOS7``.
- **Amazon Linux 1** (``amzn`` ``2018.03``) is ``AMAZON_LINUX``, product ``AmazonLinux2018.03``.
- Package manager: dnf from EL 8, Amazon Linux 2023 and Fedora on; yum for EL 7 and older,
  Amazon Linux 1 and 2; zypper for SUSE.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from patchfleet.domain.facts import OsInfo, PackageManager
from patchfleet.errors import ParseError, UnsupportedOSError

_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")

# os-release ID -> (AWS OperatingSystem, product prefix).
_APT_OSES: dict[str, tuple[str, str]] = {
    "debian": ("DEBIAN", "Debian"),
    "ubuntu": ("UBUNTU", "Ubuntu"),
    "raspbian": ("RASPBIAN", "Raspbian"),
}
_EL_OSES: dict[str, tuple[str, str]] = {
    "rhel": ("REDHAT_ENTERPRISE_LINUX", "RedhatEnterpriseLinux"),
    "rocky": ("ROCKY_LINUX", "RockyLinux"),
    "almalinux": ("ALMA_LINUX", "AlmaLinux"),
    "ol": ("ORACLE_LINUX", "OracleLinux"),
    "centos": ("CENTOS", "CentOS"),
}
_SUSE_IDS = frozenset({"sles", "sles_sap", "sled", "opensuse-leap"})
_SUPPORTED = (
    "Debian, Ubuntu, Raspbian, RHEL, Rocky Linux, AlmaLinux, Oracle Linux, CentOS, "
    "Amazon Linux, SLES and openSUSE Leap"
)
_WHY_NOT: dict[str, str] = {
    "fedora": "AWS Patch Manager has no Fedora operating system, so no baseline can target it",
    "opensuse-tumbleweed": "rolling releases have no stable version to baseline",
    "opensuse-microos": "transactional systems are patched with transactional-update",
}


@dataclass(frozen=True, slots=True)
class _Mapped:
    operating_system: str
    product: str
    package_manager: PackageManager


def parse_os_release(text: str) -> dict[str, str]:
    """KEY=VALUE lines, values shell-unquoted. Comments and blank lines are allowed."""
    fields: dict[str, str] = {}
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            raise ParseError("not a KEY=VALUE line", tool="os-release", line_no=no, line=raw)
        key, value = m.groups()
        try:
            parts = shlex.split(value, posix=True) if value else [""]
        except ValueError as err:
            raise ParseError(f"bad quoting ({err})", "os-release", no, raw) from None
        fields[key] = " ".join(parts)
    if "ID" not in fields:
        raise ParseError("no ID= line; is this really an os-release file?", tool="os-release")
    return fields


def _major(version_id: str) -> int | None:
    head = version_id.split(".")[0]
    return int(head) if head.isdigit() else None


def _map(os_id: str, fields: dict[str, str], version_id: str, pretty: str) -> _Mapped:
    if os_id in _APT_OSES:
        operating_system, prefix = _APT_OSES[os_id]
        return _Mapped(operating_system, f"{prefix}{version_id}", PackageManager.APT)
    major = _major(version_id)
    if major is None:
        raise UnsupportedOSError(f"{pretty} has VERSION_ID={version_id!r}, which is not a "
                                 "release number patchfleet can derive a product from")
    if os_id in _EL_OSES:
        operating_system, prefix = _EL_OSES[os_id]
        manager = PackageManager.DNF if major >= 8 else PackageManager.YUM
        if os_id == "centos" and "stream" in fields.get("NAME", "").lower():
            return _Mapped(operating_system, f"CentOSStream{major}", manager)
        return _Mapped(operating_system, f"{prefix}{version_id}", manager)
    if os_id == "amzn":
        if version_id == "2":
            return _Mapped("AMAZON_LINUX_2", "AmazonLinux2", PackageManager.YUM)
        if version_id in ("2022", "2023"):
            return _Mapped(f"AMAZON_LINUX_{version_id}", f"AmazonLinux{version_id}",
                           PackageManager.DNF)
        if major < 2022:
            return _Mapped("AMAZON_LINUX", f"AmazonLinux{version_id}", PackageManager.YUM)
        raise UnsupportedOSError(f"{pretty} is a newer Amazon Linux than patchfleet knows "
                                 "(AWS names AMAZON_LINUX, _2, _2022 and _2023)")
    if os_id in _SUSE_IDS:
        return _Mapped("SUSE", f"Suse{version_id}", PackageManager.ZYPPER)
    raise AssertionError(os_id)  # os_info() checked the ID


def os_info(fields: dict[str, str]) -> OsInfo:
    """Map os-release fields to :class:`OsInfo`; raise UnsupportedOSError for other OSes."""
    os_id = fields["ID"].lower()
    id_like = tuple(fields.get("ID_LIKE", "").split())
    pretty = fields.get("PRETTY_NAME", fields.get("NAME", os_id))
    known = os_id in _APT_OSES or os_id in _EL_OSES or os_id == "amzn" or os_id in _SUSE_IDS
    if not known:
        why = _WHY_NOT.get(os_id)
        reason = f" ({why})" if why else ""
        raise UnsupportedOSError(
            f"{pretty} (ID={os_id}) is not a supported OS{reason}; patchfleet scans {_SUPPORTED} "
            "nodes. Remove the node from the targets or pick another inventory."
        )
    version_id = fields.get("VERSION_ID", "")
    if not version_id:
        raise UnsupportedOSError(
            f"{pretty} has no VERSION_ID (testing/unstable?); patchfleet supports released "
            "versions only"
        )
    mapped = _map(os_id, fields, version_id, pretty)
    return OsInfo(
        id=os_id,
        version_id=version_id,
        name=fields.get("NAME", os_id),
        pretty_name=pretty,
        version_codename=fields.get("VERSION_CODENAME", ""),
        id_like=id_like,
        operating_system=mapped.operating_system,
        product=mapped.product,
        package_manager=mapped.package_manager,
    )
