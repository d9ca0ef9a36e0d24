"""Parse /etc/os-release (os-release(5)) and derive the AWS operating system and product.

``PRODUCT`` values follow AWS: ``Debian12``, ``Ubuntu22.04``, ``Raspbian11``. An OS patchfleet
does not support yet is a clear :class:`UnsupportedOSError`, never a guess.
"""

from __future__ import annotations

import re
import shlex

from patchfleet.domain.facts import OsInfo, PackageManager
from patchfleet.errors import ParseError, UnsupportedOSError

_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")

# os-release ID -> (AWS OperatingSystem, product prefix). Only apt families for now.
_APT_OSES: dict[str, tuple[str, str]] = {
    "debian": ("DEBIAN", "Debian"),
    "ubuntu": ("UBUNTU", "Ubuntu"),
    "raspbian": ("RASPBIAN", "Raspbian"),
}


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


def os_info(fields: dict[str, str]) -> OsInfo:
    """Map os-release fields to :class:`OsInfo`; raise UnsupportedOSError for other OSes."""
    os_id = fields["ID"].lower()
    id_like = tuple(fields.get("ID_LIKE", "").split())
    known = _APT_OSES.get(os_id)
    if known is None:
        pretty = fields.get("PRETTY_NAME", os_id)
        raise UnsupportedOSError(
            f"{pretty} (ID={os_id}) is not a supported OS; patchfleet scans Debian, Ubuntu "
            "and Raspbian nodes. Remove the node from the targets or pick another inventory."
        )
    operating_system, prefix = known
    version_id = fields.get("VERSION_ID", "")
    if not version_id:
        raise UnsupportedOSError(
            f"{fields.get('PRETTY_NAME', os_id)} has no VERSION_ID (testing/unstable?); "
            "patchfleet supports released Debian, Ubuntu and Raspbian versions only"
        )
    return OsInfo(
        id=os_id,
        version_id=version_id,
        name=fields.get("NAME", os_id),
        pretty_name=fields.get("PRETTY_NAME", fields.get("NAME", os_id)),
        version_codename=fields.get("VERSION_CODENAME", ""),
        id_like=id_like,
        operating_system=operating_system,
        product=f"{prefix}{version_id}",
        package_manager=PackageManager.APT,
    )
