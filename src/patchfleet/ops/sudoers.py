"""The sudoers rules that let a scan user and an install user run exactly what patchfleet runs
as root, and nothing else (``patchfleet sudoers``).

Every privileged command patchfleet sends is one program with its arguments, run as ``sudo -n
VAR=value... -- PROGRAM ARGS`` (:meth:`patchfleet.transport.base.Command.render`): no ``env``
and no ``sh -c`` in between, so a rule can name it. The rules are built here from the very
:class:`~patchfleet.transport.base.Command` objects the scan and install code sends, so they
cannot drift from it:

* commands without a variable part are named with their exact arguments (a program that takes
  none gets ``""``: no arguments at all);
* commands with a variable part (package specs after ``--``, a lock timeout) are matched by a
  regular expression over the whole argument string (sudo >= 1.9.10): the fixed words
  literally, the package words by :data:`~patchfleet.managers.common.PACKAGE_WORDS`, which never
  lets an option or a path through;
* the environment patchfleet sets (C locale, UTC, ``NEEDRESTART_SUSPEND``...) is passed by sudo
  itself from ``env_keep`` (never ``DEBIAN_FRONTEND``, which debconf evaluates as Perl);
  ``secure_path`` fixes where sudo finds each program.

What a family needs root for, and why, is :func:`privileged_commands`. A baseline's alternative
``sources`` are not covered: setting one up writes repository configuration as root, which no
rule can make less than root.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from patchfleet import __version__
from patchfleet.config.hooks import HookPhase, Hooks
from patchfleet.errors import ConfigError, InputError
from patchfleet.managers import apt, dnf, zypper
from patchfleet.managers.base import PackageSpec
from patchfleet.managers.post_probes import RESTART_PROC_MAPS
from patchfleet.ops.hooks import hook_env
from patchfleet.ops.reboot import reboot_commands
from patchfleet.transport.base import Command

FAMILIES: tuple[str, ...] = ("apt", "dnf", "zypper")
SECURE_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
"""Where sudo looks for the programs (set for the two users, so a PATH of theirs cannot
change which program runs)."""

_NUMBER = 987654321
"""Stands for a number the operator chooses per run (lock timeouts): matched as ``[0-9]+``."""

# Where each program lives; both names where distributions differ (usr-merged or not). A path
# that does not exist on a node matches nothing there.
PROGRAM_PATHS: dict[str, tuple[str, ...]] = {
    "apt-get": ("/usr/bin/apt-get",),
    "apt-mark": ("/usr/bin/apt-mark",),
    "dnf": ("/usr/bin/dnf",),
    "zypper": ("/usr/bin/zypper",),
    "needrestart": ("/usr/sbin/needrestart",),
    "find": ("/usr/bin/find", "/bin/find"),
    "systemctl": ("/usr/bin/systemctl", "/bin/systemctl"),
    "reboot": ("/usr/sbin/reboot", "/sbin/reboot"),
    "shutdown": ("/usr/sbin/shutdown", "/sbin/shutdown"),
    "sh": ("/usr/bin/sh", "/bin/sh"),
}

_SAMPLE = (PackageSpec(name="pkg", arch="amd64", version="1.0-1"),)


@dataclass(frozen=True, slots=True)
class Privileged:
    """One command patchfleet runs as root: for which operation, on which family, and why."""

    alias: str
    """The sudoers Cmnd_Alias name (upper case)."""
    operation: str
    """``scan`` (sent by scans that refresh, and by installs) or ``install``."""
    family: str
    """``apt``, ``dnf``, ``zypper`` or ``all``."""
    command: Command
    why: str


def privileged_commands(families: Iterable[str] = FAMILIES) -> tuple[Privileged, ...]:
    """Everything patchfleet runs as root on nodes of ``families``, with the reason. A scan
    runs as root only its refresh (writes the package manager's caches) and the read-only
    restart report (other users' /proc maps); an install adds what changes the node."""
    wanted = set(families)
    out: list[Privileged] = []

    def add(alias: str, operation: str, family: str, command: Command, why: str) -> None:
        if family == "all" or family in wanted:
            out.append(Privileged(alias, operation, family, command, why))

    add("PATCHFLEET_APT_REFRESH", "scan", "apt", apt.apt_update(_NUMBER),
        "apt-get update writes /var/lib/apt/lists and takes apt's lists lock (root only)")
    add("PATCHFLEET_DNF_REFRESH", "scan", "dnf", dnf.MAKECACHE.command,
        "dnf makecache writes the system metadata cache under /var/cache/dnf")
    add("PATCHFLEET_ZYPPER_REFRESH", "scan", "zypper", zypper.REFRESH.command,
        "zypper refresh writes /var/cache/zypp and takes the zypp lock")
    add("PATCHFLEET_APT_INSTALL", "install", "apt", apt.apt_install(_SAMPLE, _NUMBER),
        "installs the approved versions (dpkg writes the system)")
    add("PATCHFLEET_APT_HOLD", "install", "apt", apt.apt_mark("hold", ["pkg"]),
        "holds a rejected package for the install (rejected-patches action BLOCK)")
    add("PATCHFLEET_APT_UNHOLD", "install", "apt", apt.apt_mark("unhold", ["pkg"]),
        "lifts the hold patchfleet set, after the install")
    add("PATCHFLEET_NEEDRESTART", "scan", "apt", apt.NEEDRESTART_BATCH.command,
        "read-only restart report: needrestart -b reads every process's memory maps to list "
        "services to restart")
    add("PATCHFLEET_DNF_INSTALL", "install", "dnf", dnf.dnf_upgrade(_SAMPLE, ["pkg"]),
        "installs the approved versions (--exclude: rejected packages under BLOCK)")
    add("PATCHFLEET_ZYPPER_INSTALL", "install", "zypper", zypper.zypper_update(_SAMPLE, 0),
        "installs the approved versions")
    add("PATCHFLEET_ZYPPER_ADDLOCK", "install", "zypper", zypper.zypper_lock("addlock", ["pkg"], 0),
        "locks a rejected package for the install (rejected-patches action BLOCK)")
    add("PATCHFLEET_ZYPPER_REMOVELOCK", "install", "zypper",
        zypper.zypper_lock("removelock", ["pkg"], 0), "lifts the lock patchfleet set")
    add("PATCHFLEET_ZYPPER_PS", "scan", "zypper", zypper.PS.command,
        "read-only restart report: zypper ps reads every process's memory maps (processes "
        "using deleted files)")
    add("PATCHFLEET_PROC_MAPS", "scan", "all", RESTART_PROC_MAPS.command,
        "read-only restart report: reads /proc/PID/maps of every process (other users' maps "
        "are root only) to find processes still running replaced files")
    for command in reboot_commands():
        add(f"PATCHFLEET_REBOOT_{command.argv[0].upper()}", "install", "all", command,
            "reboots after the install (RebootIfNeeded / RebootIfRequired), tried in order: "
            + " || ".join(" ".join(c.argv) for c in reboot_commands()))
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# sudoers text
# ---------------------------------------------------------------------------------------------

_SUDOERS_SPECIAL = re.compile(r"([\\,:=*?\[\]!#\s])")
_ERE_SPECIAL = set(".*+?(){}|$")
_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")


def sudoers_word(word: str, *, regex: bool = False) -> str:
    """``word`` as one argument of a sudoers command (``\\`` before sudoers' special
    characters; in a regular expression only before ``\\ , : =``)."""
    if not word:
        raise ConfigError("sudoers cannot name an empty argument")
    if "\n" in word or "\r" in word:
        raise ConfigError(f"sudoers cannot name an argument with a line break: {word[:60]!r}")
    if regex:
        return re.sub(r"([\\,:=])", r"\\\1", word)
    return _SUDOERS_SPECIAL.sub(r"\\\1", word)


def _ere_literal(word: str) -> str:
    """``word`` as a POSIX extended regular expression matching itself (bracket form: no
    backslashes for the sudoers lexer to eat)."""
    if any(c in word for c in "^]\\"):
        raise ConfigError(f"cannot write {word!r} as a sudoers regular expression")
    return "".join(f"[{c}]" if c in _ERE_SPECIAL else c for c in word)


def command_specs(command: Command) -> tuple[str, ...]:
    """The sudoers command specifications (one per program path) allowing ``command``."""
    program, *args = command.argv
    paths = PROGRAM_PATHS.get(program)
    if paths is None:
        raise ConfigError(f"no sudoers path known for program {program!r}")
    end = command.variable_from if command.variable_from is not None else len(command.argv)
    fixed = args[:end - 1]
    number = str(_NUMBER)
    if command.variable_from is not None or any(number in w for w in fixed):
        parts = [_ere_literal(w).replace(number, "[0-9]+") for w in fixed]
        if command.variable_from is not None:
            parts.append(command.variable_pattern)
        spec = sudoers_word("^" + " ".join(parts) + "$", regex=True)
    elif fixed:
        spec = " ".join(sudoers_word(w) for w in fixed)
    else:
        spec = '""'
    return tuple(f"{path} {spec}" for path in paths)


def hook_specs(hooks: Hooks) -> tuple[tuple[str, str], ...]:
    """(phase, command spec) for every hook of ``hooks``: a hook is ``sh -c COMMAND``, named
    exactly; a ``script`` hook cannot be (its text spans lines)."""
    out: list[tuple[str, str]] = []
    phases: tuple[HookPhase, ...] = ("pre_install", "post_install", "on_exit")
    for phase in phases:
        spec = hooks.get(phase)
        if spec is None:
            continue
        if spec.script is not None:
            raise ConfigError(
                f"hook {phase} is a script ({spec.script}): sudoers cannot name a script's "
                "text; install the script on the nodes and hook it as "
                f"'command: /path/on/node/{spec.script.name}'")
        argv = spec.argv()
        for path in PROGRAM_PATHS["sh"]:
            out.append((phase, f"{path} {' '.join(sudoers_word(w) for w in argv[1:])}"))
    return tuple(out)


def _env_names(commands: Sequence[Command], extra: Iterable[str] = ()) -> tuple[str, ...]:
    names: dict[str, None] = {}
    for command in commands:
        for key, _ in command.environment(sudo=True):
            names[key] = None
    for key in extra:
        names[key] = None
    return tuple(names)


def _alias_block(name: str, specs: Sequence[str]) -> list[str]:
    lines = [f"Cmnd_Alias {name} = \\"]
    for i, spec in enumerate(specs):
        lines.append(f"    {spec}{', ' + chr(92) if i < len(specs) - 1 else ''}")
    return lines


def render_sudoers(*, scan_user: str, install_user: str, families: Sequence[str] = FAMILIES,
                   hooks: Hooks | None = None, command_line: str = "patchfleet sudoers"
                   ) -> str:
    """The sudoers file: Defaults for both users, one Cmnd_Alias per command (with why), and
    the two user rules (the install user also gets the scan commands: an install refreshes and
    scans with the install identity)."""
    for user in (scan_user, install_user):
        if not _USER.match(user):
            raise InputError(f"{user!r} is not a user name sudoers accepts; use letters, "
                              "digits, '_', '.', '-' (at most 32, starting with a letter or _)")
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown or not families:
        raise InputError(f"--family {','.join(unknown) or '(none)'}: choose from "
                          f"{', '.join(FAMILIES)}")
    privileged = privileged_commands(families)
    hook_lines = hook_specs(hooks) if hooks else ()
    users = [scan_user] if scan_user == install_user else [scan_user, install_user]
    hook_vars = [k for k, _ in hook_env(run_id="r", node_id="n", operation="o", snapshot_id="s")]
    lines = [
        f"# patchfleet {__version__}: the commands patchfleet runs as root, and nothing else.",
        f"# Generated by: {command_line}",
        f"# Scan user: {scan_user}; install user: {install_user}; families: "
        f"{', '.join(families)}.",
        "# Check and install it on a node (as root):",
        "#   visudo -c -f patchfleet.sudoers && "
        "install -m 0440 patchfleet.sudoers /etc/sudoers.d/patchfleet",
        "# Needs sudo >= 1.9.10 (regular expressions in arguments: the ^...$ rules).",
        "# Not covered: a baseline's alternative 'sources' (they write repository configuration",
        "# as root, which no rule can make less than root): they need root or unrestricted sudo.",
        "",
        f"Defaults:{', '.join(users)} secure_path=\"{SECURE_PATH}\", env_reset, !requiretty",
        f"Defaults:{', '.join(users)} env_keep += "
        f"\"{' '.join(_env_names([p.command for p in privileged]))}\"",
        f"Defaults:{install_user} env_keep += \"{' '.join(hook_vars)}\"",
    ]
    scan_aliases: list[str] = []
    install_aliases: list[str] = []
    for p in privileged:
        lines += ["", f"# {p.operation}, {p.family}: {' '.join(p.command.argv[:4])} ...: {p.why}"]
        lines += _alias_block(p.alias, command_specs(p.command))
        (scan_aliases if p.operation == "scan" else install_aliases).append(p.alias)
    if hook_lines:
        lines += ["", "# install: the lifecycle hooks of the hooks file, exactly"]
        lines += _alias_block("PATCHFLEET_HOOKS", [spec for _, spec in hook_lines])
        install_aliases.append("PATCHFLEET_HOOKS")
    lines.append("")
    if scan_user == install_user:
        lines.append(f"{scan_user} ALL=(root) NOPASSWD: "
                     f"{', '.join(scan_aliases + install_aliases)}")
    else:
        lines.append(f"{scan_user} ALL=(root) NOPASSWD: {', '.join(scan_aliases)}")
        lines.append(f"{install_user} ALL=(root) NOPASSWD: "
                     f"{', '.join(scan_aliases + install_aliases)}")
    return "\n".join(lines) + "\n"
