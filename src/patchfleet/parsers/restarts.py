"""Parse the POST-INSTALL probes: processes still running deleted or
replaced files, services needrestart or zypper would restart, and competing auto-updaters.

Pure: text in, frozen dataclasses out. A line a parser does not understand raises
:class:`~patchfleet.errors.ParseError`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from patchfleet.errors import ParseError


@dataclass(frozen=True, slots=True)
class StaleProcess:
    """A process that still maps ``file``, which was deleted or replaced (``file`` is empty when
    the source names no file, as ``zypper ps``)."""

    pid: int
    command: str
    file: str


@dataclass(frozen=True, slots=True)
class RestartState:
    """Processes (pid, command, file) and services that should be restarted after an install.

    ``kernel_status`` is needrestart's NEEDRESTART-KSTA (0 unknown, 1 current, 2 ABI-compatible
    upgrade pending, 3 version upgrade pending) or None when needrestart did not run.
    """

    processes: tuple[StaleProcess, ...] = ()
    services: tuple[str, ...] = ()
    kernel_status: int | None = None

    @property
    def pids(self) -> tuple[int, ...]:
        return tuple(sorted({p.pid for p in self.processes}))


@dataclass(frozen=True, slots=True)
class AutoUpdaters:
    """Competing auto-updaters. ``found`` are (name, detail) pairs that can change packages or take
    the package manager's lock on their own; ``inactive`` are present but configured off (or
    configured on without the package). ``systemd`` is False when the node runs without systemd
    (unit states then come from the ``*.wants`` symlinks)."""

    found: tuple[tuple[str, str], ...] = ()
    inactive: tuple[tuple[str, str], ...] = ()
    systemd: bool | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.found)


# --- restart-proc-maps -------------------------------------------------------------------------

_GREP_LINE = re.compile(r"^/proc/(?P<pid>[^/]+)/(?P<what>comm|maps):(?P<text>.*)$")
# /proc/PID/maps: address perms offset dev inode [path]; the path may contain spaces.
_MAPS_FIELDS = re.compile(r"^\S+ +\S+ +\S+ +\S+ +\S+ +(?P<file>/.*) \(deleted\)$")
_NOT_PACKAGE_FILE = ("/dev/", "/memfd:", "/SYSV", "/run/user/")


def parse_proc_maps(text: str) -> RestartState:
    """``grep -H`` lines of ``/proc/PID/comm`` (every process's name) and ``/proc/PID/maps``
    (mappings ending in ``(deleted)``), in any order: the processes that still map a deleted
    or replaced file, by pid. Mappings of special files (memfd, /dev/shm, SysV shm, /run/user)
    are not package files and are left out; a process whose name was not read (it exited
    between the two reads) is left out too."""
    names: dict[int, str] = {}
    stale: list[tuple[int, str]] = []
    for no, raw in enumerate(text.splitlines(), 1):
        m = _GREP_LINE.match(raw)
        if not m:
            raise ParseError("expected /proc/PID/comm:NAME or /proc/PID/maps:LINE",
                             "restart-proc-maps", no, raw)
        if not m["pid"].isdigit():  # /proc/self, /proc/thread-self: the probe itself
            continue
        pid = int(m["pid"])
        if m["what"] == "comm":
            names[pid] = m["text"][:64]
            continue
        mapped = _MAPS_FIELDS.match(m["text"])
        if mapped and not mapped["file"].startswith(_NOT_PACKAGE_FILE):
            stale.append((pid, mapped["file"]))
    procs: list[StaleProcess] = []
    for pid, file in sorted(set(stale)):
        if pid in names:
            procs.append(StaleProcess(pid, names[pid], file))
    return RestartState(processes=tuple(procs))


# --- needrestart-batch --------------------------------------------------------------------------

_NR_LINE = re.compile(r"^NEEDRESTART-(?P<key>[A-Z]+):\s*(?P<value>.*)$")
_NR_KNOWN = {"VER", "KCUR", "KEXP", "KSTA", "UCSTA", "UCCUR", "UCEXP", "SVC", "CONT", "SESS",
             "PID"}
_SERVICE = re.compile(r"^[A-Za-z0-9@._:\\-]+$")


_NR_ABSENT = ("needrestart: command not found", "'needrestart': No such file or directory")


def parse_needrestart_result(exit_status: int, stdout: str, stderr: str
                             ) -> RestartState | None:
    """The needrestart probe's result: None when needrestart is not installed (env exits 127;
    through sudo, sudo says "command not found"), else :func:`parse_needrestart`."""
    if exit_status != 0:
        if any(s in stderr for s in _NR_ABSENT):
            return None
        tail = " | ".join((stderr.strip() or stdout.strip()).splitlines()[-2:])[:200]
        raise ParseError(f"needrestart exited {exit_status}: {tail}", "needrestart-batch")
    return parse_needrestart(stdout)


def parse_needrestart(text: str) -> RestartState | None:
    """``needrestart -b`` output; None when the probe printed ``needrestart: absent``."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if lines == ["needrestart: absent"]:
        return None
    services: list[str] = []
    ksta: int | None = None
    for no, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        m = _NR_LINE.match(raw)
        if not m or m["key"] not in _NR_KNOWN:
            raise ParseError("not a NEEDRESTART-<KEY>: line", "needrestart-batch", no, raw)
        value = m["value"].strip()
        if m["key"] == "KSTA":
            if value not in ("0", "1", "2", "3"):
                raise ParseError("kernel status is not 0-3", "needrestart-batch", no, raw)
            ksta = int(value)
        elif m["key"] == "SVC":
            if not _SERVICE.match(value):
                raise ParseError("not a unit name", "needrestart-batch", no, raw)
            if value not in services:
                services.append(value)
    return RestartState(services=tuple(services), kernel_status=ksta)


# --- zypper-ps ----------------------------------------------------------------------------------

_ZYPPER_NONE = "No processes using deleted files found."
_ZYPPER_TRAILER = {
    "No core libraries or services have been updated.",
    "Reboot is probably not necessary.",
    "Core libraries or services have been updated.",
    "You may wish to restart these processes.",
    "See 'man zypper' for information about the meaning of values in the above table.",
    "The following running processes use deleted files:",
}
_ZYPPER_HEADER = re.compile(
    r"^PID\s*\|\s*PPID\s*\|\s*UID\s*\|\s*User\s*\|\s*Command\s*\|\s*Service"
)
_ZYPPER_RULE = re.compile(r"^[-+]+$")


def parse_zypper_ps(text: str) -> RestartState:
    """``zypper ps -s``: ``PID | PPID | UID | User | Command | Service`` rows (or the "No processes"
    line) plus zypper's reboot hint lines."""
    procs: list[StaleProcess] = []
    services: list[str] = []
    header = False
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line == _ZYPPER_NONE or line in _ZYPPER_TRAILER:
            continue
        if line.startswith("Reboot is required") or line.startswith("Reboot is suggested"):
            continue
        if _ZYPPER_HEADER.match(line):
            header = True
            continue
        if _ZYPPER_RULE.match(line):
            continue
        cells = [c.strip() for c in line.split("|")]
        if not header or len(cells) != 6 or not cells[0].isdigit():
            raise ParseError("not a zypper ps row", "zypper-ps", no, raw)
        command = cells[4].removesuffix(" (deleted)")
        procs.append(StaleProcess(int(cells[0]), command, ""))
        if cells[5] and cells[5] not in services:
            services.append(cells[5])
    return RestartState(processes=tuple(procs), services=tuple(services))


def merge(*states: RestartState | None) -> RestartState:
    """One state from several sources: processes by (pid, file), a process without a file
    dropped when another source names its files; services and kernel status combined."""
    procs: list[StaleProcess] = []
    services: list[str] = []
    ksta: int | None = None
    present = [s for s in states if s is not None]
    with_files = {p.pid for s in present for p in s.processes if p.file}
    for s in present:
        for p in s.processes:
            if (not p.file and p.pid in with_files) or p in procs:
                continue
            procs.append(p)
        services.extend(x for x in s.services if x not in services)
        if s.kernel_status is not None:
            ksta = s.kernel_status
    procs.sort(key=lambda p: (p.pid, p.file))
    return RestartState(tuple(procs), tuple(services), ksta)


# --- auto-updaters ------------------------------------------------------------------------------

_AU_KEYS = {
    "systemd", "package", "apt-periodic", "apt-periodic-file", "unit", "dnf-automatic-apply",
    "yum-cron-apply", "packagekitd", "suse-online-update", "processes", "process",
}
# /proc/PID/comm of each updater's process (the kernel cuts comm at 15 characters).
_PROCESSES = {"packagekitd": "packagekit", "unattended-upgr": "unattended-upgrades",
              "dnf-automatic": "dnf-automatic", "yum-cron": "yum-cron"}
_AU_LINE = re.compile(r"^(?P<key>[a-z-]+): (?P<value>\S.*)$")
_ENABLED_STATES = {"enabled", "enabled-runtime", "static", "alias", "indirect", "generated"}
_UNIT_STATES = _ENABLED_STATES | {
    "disabled", "masked", "masked-runtime", "linked", "linked-runtime", "transient", "bad",
    "unknown",
}


def _periodic_on(value: str) -> bool:
    v = value.strip().strip('"')
    return v not in ("", "0", "0d", "false", "no", "never")


def parse_auto_updaters(text: str) -> AutoUpdaters:
    lines = text.splitlines()
    if not lines or lines[0] != "auto-updaters: 1":
        raise ParseError("expected 'auto-updaters: 1' first", "auto-updaters", 1,
                         lines[0] if lines else "")
    if lines[-1] != "end":
        raise ParseError("output does not end with 'end' (truncated?)", "auto-updaters")
    systemd: bool | None = None
    packages: set[str] = set()
    periodic: dict[str, str] = {}
    periodic_files: list[str] = []
    units: dict[str, str] = {}
    conf: dict[str, str] = {}
    daemons: list[str] = []
    probed = False
    running: set[str] = set()
    for no, raw in enumerate(lines[1:-1], 2):
        m = _AU_LINE.match(raw)
        if not m or m["key"] not in _AU_KEYS:
            raise ParseError("not a known 'key: value' line", "auto-updaters", no, raw)
        key, value = m["key"], m["value"]
        if key == "systemd":
            if value not in ("running", "absent"):
                raise ParseError("systemd is running|absent", "auto-updaters", no, raw)
            systemd = value == "running"
        elif key == "package":
            packages.add(value)
        elif key == "apt-periodic":
            name, _, setting = value.partition(" ")
            if name not in ("Enable", "Update-Package-Lists", "Unattended-Upgrade") or not setting:
                raise ParseError("expected 'apt-periodic: KEY VALUE'", "auto-updaters", no, raw)
            periodic[name] = setting
        elif key == "apt-periodic-file":
            if not value.startswith("/etc/apt/apt.conf.d/"):
                raise ParseError("not an apt.conf.d file", "auto-updaters", no, raw)
            periodic_files.append(value)
        elif key == "unit":
            name, _, state = value.partition(" ")
            if state not in _UNIT_STATES:
                raise ParseError("unknown unit state", "auto-updaters", no, raw)
            units[name] = state
        elif key == "packagekitd":
            daemons.append(value)
        elif key == "processes":
            if value != "probed":
                raise ParseError("expected 'processes: probed'", "auto-updaters", no, raw)
            probed = True
        elif key == "process":
            if value not in _PROCESSES or not probed:
                raise ParseError("not an updater process, or before 'processes: probed'",
                                 "auto-updaters", no, raw)
            running.add(_PROCESSES[value])
        else:
            allowed = ("true", "false", "unset") if key == "suse-online-update" else (
                "yes", "no", "unset")
            if value not in allowed:
                raise ParseError(f"{key} is one of {'|'.join(allowed)}", "auto-updaters", no, raw)
            conf[key] = value

    found: list[tuple[str, str]] = []
    inactive: list[tuple[str, str]] = []
    how = "" if systemd else " (no systemd running: from the *.wants symlinks)"

    def unit_on(name: str) -> bool:
        return units.get(name) in _ENABLED_STATES

    def units_detail(names: Sequence[str]) -> str:
        return ", ".join(f"{n} {units[n]}" for n in names if n in units) + how

    # unattended-upgrades: the package, and APT::Periodic::Unattended-Upgrade not 0.
    uu = periodic.get("Unattended-Upgrade")
    if uu is not None or "unattended-upgrades" in packages:
        where = f" ({', '.join(periodic_files)})" if periodic_files else ""
        setting = f'APT::Periodic::Unattended-Upgrade "{uu}"{where}' if uu is not None else (
            "APT::Periodic::Unattended-Upgrade not set")
        enable = periodic.get("Enable")
        if enable is not None and not _periodic_on(enable):
            inactive.append(("unattended-upgrades", f'{setting}; APT::Periodic::Enable "{enable}"'))
        elif "unattended-upgrades" not in packages:
            inactive.append(("unattended-upgrades", f"{setting}; package not installed"))
        elif uu is None or not _periodic_on(uu):
            inactive.append(("unattended-upgrades", setting))
        else:
            found.append(("unattended-upgrades", setting))
    # apt-daily timers: refresh lists / run unattended-upgrade, holding the dpkg and lists locks.
    for timer in ("apt-daily.timer", "apt-daily-upgrade.timer"):
        if timer in units:
            (found if unit_on(timer) else inactive).append((timer, units_detail([timer])))
    # dnf-automatic: the package and one of its timers.
    dnf_timers = [u for u in units if u.startswith(("dnf-automatic", "dnf5-automatic"))]
    if packages & {"dnf-automatic", "dnf5-plugin-automatic"}:
        apply = conf.get("dnf-automatic-apply", "unset")
        detail = units_detail(dnf_timers) or "no timer unit"
        detail += f"; apply_updates={apply}"
        (found if any(unit_on(u) for u in dnf_timers) else inactive).append(
            ("dnf-automatic", detail))
    if "yum-cron" in packages:
        detail = (units_detail(["yum-cron.service"]) or "no service unit") + (
            f"; apply_updates={conf.get('yum-cron-apply', 'unset')}")
        (found if unit_on("yum-cron.service") else inactive).append(("yum-cron", detail))
    if daemons or packages & {"PackageKit", "packagekit"}:
        pk_units = [u for u in ("packagekit.service", "packagekit-offline-update.service")
                    if u in units]
        detail = f"installed ({', '.join(daemons) or 'package'})"
        enabled = [u for u in pk_units if unit_on(u)]
        if enabled:
            detail += "; enabled: " + units_detail(enabled)
        elif pk_units:
            detail += "; not enabled: " + units_detail(pk_units)
        # packagekitd is D-Bus activated: installed means any desktop or cockpit client can
        # start it and take the package manager's lock, enabled or not, running or not.
        if not probed:
            detail += "; running: not probed"
        elif "packagekit" in running:
            detail += "; running: yes (packagekitd)"
        else:
            detail += "; running: no (D-Bus starts it on demand)"
        found.append(("packagekit", detail))
    aou = conf.get("suse-online-update")
    if aou is not None:
        (found if aou == "true" else inactive).append(
            ("suse-automatic-online-update", f"AOU_ENABLE_CRONJOB={aou}"))
    if "os-update.timer" in units:
        (found if unit_on("os-update.timer") else inactive).append(
            ("os-update", units_detail(["os-update.timer"])))
    if probed:  # the other updaters: say so when one is at work right now
        found = [(name, f"{detail}; running now" if name in running and name != "packagekit"
                  else detail) for name, detail in found]
        inactive = [(name, f"{detail}; running now" if name in running else detail)
                    for name, detail in inactive]
    return AutoUpdaters(tuple(found), tuple(inactive), systemd)
