"""Which commands a scan sends to a node, per package manager. Pure: no I/O.

Each probe is a :class:`~patchfleet.transport.base.Command` with a stable name; the golden files
under ``tests/golden/`` are keyed by these names, and ``testnodes/capture_golden.py`` captures
exactly these commands from real nodes so the parsers are always tested on what a scan sees.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from patchfleet.transport.base import Command, script

# Debian policy: package names are lower-case alphanumerics and + - . (at least two chars);
# versions are [epoch:]upstream[-revision] with alphanumerics and . + ~ - : only.
DEB_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9+.\-]+(:[a-z0-9\-]+)?$")
DEB_VERSION_RE = re.compile(r"^[0-9A-Za-z.+~:\-]+$")

OS_RELEASE = Command(
    script("cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release"),
    name="os-release",
)

# Line 1: boot id. Line 2: whether /var/run/reboot-required exists. Then reboot-required.pkgs.
APT_REBOOT = Command(
    script(
        "cat /proc/sys/kernel/random/boot_id; "
        "if [ -e /var/run/reboot-required ]; then echo 'reboot-required: yes'; "
        "else echo 'reboot-required: no'; fi; "
        "if [ -r /var/run/reboot-required.pkgs ]; then cat /var/run/reboot-required.pkgs; fi"
    ),
    name="apt-reboot",
)

DPKG_QUERY_FORMAT = (
    "${Package}\\t${Architecture}\\t${Version}\\t${source:Package}\\t${source:Version}"
    "\\t${db:Status-Want}\\t${db:Status-Status}\\t${Priority}\\t${Section}\\n"
)
DPKG_QUERY = Command(("dpkg-query", "-W", "-f", DPKG_QUERY_FORMAT), name="dpkg-query")

# Releases known to apt: maps each source line to its Release fields (o= l= a= n= c=).
APT_POLICY = Command(("apt-cache", "policy"), name="apt-cache-policy")

# Version tables of every installed package: installed, candidate, and each version's sources.
APT_POLICY_INSTALLED = Command(
    script(
        "dpkg-query -W -f '${db:Status-Status} ${binary:Package}\\n' "
        "| awk '$1 == \"installed\" { print $2 }' | xargs -r apt-cache policy"
    ),
    name="apt-cache-policy-installed",
)

# What a full upgrade would do (new dependencies included), without taking the dpkg lock.
APT_SIMULATE = Command(
    ("apt-get", "-s", "-o", "Debug::NoLocking=1", "dist-upgrade"),
    name="apt-get-simulate",
)


def apt_update(lock_timeout: int = 60) -> Command:
    """Refresh the package lists. apt-get waits up to ``lock_timeout`` s for a held lock."""
    return Command(
        ("apt-get", "-q", "-o", f"DPkg::Lock::Timeout={int(lock_timeout)}", "update"),
        privileged=True,
        ok_exit=frozenset({0, 100}),
        name="apt-get-update",
    )


def apt_show(versions: Iterable[tuple[str, str]]) -> Command:
    """Priority and Section of specific versions: ``apt-cache show name=version ...``."""
    args: list[str] = []
    for name, version in versions:
        if not DEB_NAME_RE.match(name):
            raise ValueError(f"refusing to send package name {name!r}: not a Debian name")
        if not DEB_VERSION_RE.match(version):
            raise ValueError(f"refusing to send version {version!r}: not a Debian version")
        args.append(f"{name}={version}")
    return Command(("apt-cache", "show", *args), name="apt-cache-show")


APT_SCAN_PROBES: tuple[Command, ...] = (
    APT_REBOOT,
    DPKG_QUERY,
    APT_POLICY,
    APT_POLICY_INSTALLED,
    APT_SIMULATE,
)


# ---------------------------------------------------------------------------------------------
# RPM (shared by dnf and zypper nodes)
# ---------------------------------------------------------------------------------------------

RPM_QUERY_FORMAT = (
    "%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{INSTALLTIME}\\t%{BUILDTIME}"
    "\\t%{SOURCERPM}\\n"
)
# Every installed package, one tab-separated line each. EPOCHNUM prints 0 for "no epoch";
# times are epoch seconds. gpg-pubkey entries (imported keys) have ARCH and SOURCERPM "(none)".
RPM_QUERY = Command(("rpm", "-qa", "--queryformat", RPM_QUERY_FORMAT), name="rpm-query")

# Line 1: boot id. Line 2: /proc/uptime. Line 3: the node's clock (epoch seconds), read in the
# same instant, so that boot time = clock - uptime needs no trust in the controller's clock.
BOOT = Command(
    script("cat /proc/sys/kernel/random/boot_id; cat /proc/uptime; date +%s"),
    name="rpm-boot",
)

# ---------------------------------------------------------------------------------------------
# DNF (RHEL 8/9 and rebuilds, Amazon Linux 2023, Fedora with dnf 4)
#
# Only the refresh talks to repositories; every other probe reads dnf's cache (-C), so a scan
# sees exactly the metadata the refresh fetched. Every dnf command that loads metadata takes
# dnf's metadata lock: with exit_on_lock they exit 200 at once ("metadata already locked by
# PID") instead of waiting ("Waiting for process with pid PID to finish.") while another dnf
# loads or refreshes metadata. dnf 4 takes no lock for reading while another dnf installs.
# ---------------------------------------------------------------------------------------------

DNF_CACHED: tuple[str, ...] = ("dnf", "-q", "-C", "--setopt=exit_on_lock=True")

# Refresh every enabled repository's metadata, even if dnf thinks it is still fresh.
DNF_MAKECACHE = Command(
    ("dnf", "--setopt=exit_on_lock=True", "makecache", "--refresh"),
    privileged=True,
    timeout=600,
    name="dnf-makecache",
)

# The newest available upgrade of each installed package: name, epoch, version, release, arch,
# repo id, build time ("YYYY-MM-DD HH:MM", UTC). Obsoleting packages are not upgrades (below).
DNF_UPGRADES = Command(
    (*DNF_CACHED, "repoquery", "--upgrades", "--latest-limit=1", "--queryformat",
     "%{name}\\t%{epoch}\\t%{version}\\t%{release}\\t%{arch}\\t%{repoid}\\t%{buildtime}"),
    name="dnf-repoquery-upgrades",
)

# Packages that `dnf upgrade` would install in place of an installed one (Obsoletes:), under
# an "Obsoleting Packages" heading, each followed by the indented package it replaces. dnf
# evaluates the Obsoletes against the rpmdb, which repoquery cannot do. Empty when none.
DNF_OBSOLETES = Command(
    (*DNF_CACHED, "list", "--obsoletes"),
    name="dnf-list-obsoletes",
)

# dnf's own verdict per advisory and package (NEVRA with epoch): "i" in the first column when
# installed, type or severity/Sec. Covers only advisories for installed package names.
DNF_UPDATEINFO_LIST = Command(
    (*DNF_CACHED, "updateinfo", "list", "--all"),
    name="dnf-updateinfo-list",
)

# dnf's rendering of the same advisories (applicable ones only): title, type, severity, one date
# ("Updated": the later of issued and updated), bugzilla and CVE references, description.
DNF_UPDATEINFO_INFO = Command(
    (*DNF_CACHED, "updateinfo", "info", "--all"),
    name="dnf-updateinfo-info",
)

# The advisories themselves: each enabled repository's cached updateinfo.xml, verbatim. dnf's
# text output cannot replace it: it shows one date (the later of issued and updated), drops
# reboot_suggested, epochs in file lists and packages of other names, and hides a malformed
# date. dnf's own Python finds each repository's cache directory (its name hashes the
# configured URL after $releasever/$basearch expansion), so stale caches of old URLs are never
# read. Output per repository: "=== repo ID: PATH" (or ": none" / ": no cache" /
# ": unsupported compression") followed by the XML.
_DNF_UPDATEINFO_PY = r"""
import bz2, gzip, lzma, os, subprocess, sys
import xml.etree.ElementTree as ET
import dnf, dnf.rpm
base = dnf.Base()
conf = base.conf
conf.read()
conf.substitutions["releasever"] = dnf.rpm.detect_releasever(conf.installroot)
try:
    conf.substitutions.update_from_etc(conf.installroot, varsdir=conf.varsdir)
except TypeError:
    conf.substitutions.update_from_etc(conf.installroot)
base.read_all_repos()
out = sys.stdout.buffer
for repo in sorted(base.repos.iter_enabled(), key=lambda r: r.id):
    repodata = os.path.join(repo._repo.getCachedir(), "repodata")
    try:
        root = ET.parse(os.path.join(repodata, "repomd.xml")).getroot()
    except (OSError, ET.ParseError):
        out.write(("=== repo %s: no cache\n" % repo.id).encode())
        continue
    href = None
    for data in root:
        if data.tag.endswith("}data") and data.get("type") == "updateinfo":
            for loc in data:
                if loc.tag.endswith("}location"):
                    href = loc.get("href")
    if not href:
        out.write(("=== repo %s: none\n" % repo.id).encode())
        continue
    path = os.path.join(repodata, os.path.basename(href))
    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(
        os.path.splitext(path)[1], open if path.endswith(".xml") else None)
    if opener is None and path.endswith(".zst"):
        data = subprocess.run(["zstd", "-dc", path], stdout=subprocess.PIPE, check=True).stdout
    elif opener is None:
        out.write(("=== repo %s: unsupported compression %s\n" % (repo.id, path)).encode())
        continue
    else:
        with opener(path, "rb") as f:
            data = f.read()
    out.write(("=== repo %s: %s\n" % (repo.id, path)).encode())
    out.write(data if data.endswith(b"\n") else data + b"\n")
"""
DNF_UPDATEINFO_XML = Command(
    # dnf's own interpreter (platform-python on EL8), read from its shebang.
    script('read -r shebang < /usr/bin/dnf && exec ${shebang#"#!"} -c "$1"', _DNF_UPDATEINFO_PY),
    name="dnf-updateinfo-xml",
)

# Whether core packages (kernel, glibc, systemd...) were updated since boot: exit 1 and
# "Reboot is required" when so, 0 otherwise. dnf takes boot time from /proc/1's start.
DNF_NEEDS_RESTARTING = Command(
    (*DNF_CACHED, "needs-restarting", "-r"),
    ok_exit=frozenset({0, 1}),
    name="dnf-needs-restarting",
)

DNF_SCAN_PROBES: tuple[Command, ...] = (
    BOOT,
    RPM_QUERY,
    DNF_UPGRADES,
    DNF_OBSOLETES,
    DNF_UPDATEINFO_LIST,
    DNF_UPDATEINFO_INFO,
    DNF_UPDATEINFO_XML,
    DNF_NEEDS_RESTARTING,
)

# ---------------------------------------------------------------------------------------------
# ZYPPER (SLES 15, openSUSE Leap 15)
#
# XML output (--xmlout) wherever zypper has it. zypper waits ZYPP_LOCK_TIMEOUT seconds for the
# zypp lock, then exits 7 ("System management is locked by the application with pid N").
# Only the refresh talks to repositories (--no-refresh elsewhere).
# ---------------------------------------------------------------------------------------------

ZYPPER_LOCK_TIMEOUT = 60
ZYPPER_ENV: tuple[tuple[str, str], ...] = (("ZYPP_LOCK_TIMEOUT", str(ZYPPER_LOCK_TIMEOUT)),)
ZYPPER_CACHED: tuple[str, ...] = ("zypper", "--xmlout", "--non-interactive", "--no-refresh")

ZYPPER_REFRESH = Command(
    ("zypper", "--xmlout", "--non-interactive", "refresh"),
    privileged=True,
    timeout=600,
    env=ZYPPER_ENV,
    name="zypper-refresh",
)

# Package updates `zypper update` would install: <update kind="package" name edition
# edition-old arch> with the source repository alias.
ZYPPER_LIST_UPDATES = Command(
    (*ZYPPER_CACHED, "list-updates"),
    env=ZYPPER_ENV,
    name="zypper-list-updates",
)

# Every patch of every enabled repository, with status (needed, applied, not-needed, optional),
# category, severity, interactive/reboot/pkgmanager flags, issue date and CVE/bugzilla refs.
# Without --all, needed patches hide behind a pending update-stack patch (blocked-update-list).
ZYPPER_LIST_PATCHES = Command(
    (*ZYPPER_CACHED, "list-patches", "--all"),
    env=ZYPPER_ENV,
    name="zypper-list-patches",
)

# SUSE patch ids: SUSE-SLE-Module-Basesystem-15-SP6-2025-1234, openSUSE-SLE-15.6-2025-1234.
ZYPPER_PATCH_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+:-]*$")


def zypper_patch_info(names: Iterable[str]) -> Command:
    """Which packages each named patch updates (its ``Conflicts: name.arch < evr`` lines),
    category, severity and date, as ``zypper info -t patch`` text inside XML messages."""
    args = []
    for name in names:
        if not ZYPPER_PATCH_RE.match(name):
            raise ValueError(f"refusing to send patch name {name!r}: not a SUSE patch id")
        args.append(name)
    if not args:
        raise ValueError("zypper_patch_info needs at least one patch name")
    return Command((*ZYPPER_CACHED, "info", "-t", "patch", *args), env=ZYPPER_ENV,
                   name="zypper-patch-info")


# The same mapping for every patch at once, straight from the repositories. Each repository's raw
# updateinfo as zypper downloaded it (/var/cache/zypp/raw/ALIAS/repodata), verbatim, as
# "=== repo ALIAS: PATH" followed by the XML ("=== repo ALIAS: none" without updateinfo).
# Raw caches of removed or disabled repositories may be printed too: list-patches is the
# authority on which patches exist.
ZYPPER_UPDATEINFO = Command(
    script(
        'for dir in /var/cache/zypp/raw/*/repodata; do\n'
        '  [ -d "$dir" ] || continue\n'
        '  alias=${dir%/repodata}; alias=${alias##*/}\n'
        '  found=\n'
        '  for f in "$dir"/*updateinfo.xml*; do\n'
        '    [ -f "$f" ] || continue\n'
        '    found=1\n'
        '    echo "=== repo $alias: $f"\n'
        '    case "$f" in\n'
        '      *.gz) gzip -dc "$f" ;;\n'
        '      *.xz) xz -dc "$f" ;;\n'
        '      *.bz2) bzip2 -dc "$f" ;;\n'
        '      *.zst) zstd -dc "$f" ;;\n'
        '      *) cat "$f" ;;\n'
        '    esac || exit 1\n'
        '  done\n'
        '  [ -n "$found" ] || echo "=== repo $alias: none"\n'
        'done'
    ),
    name="zypper-updateinfo",
)

# Exit 102 and "Reboot is required" when a package listed in /etc/zypp/needreboot was updated
# since boot (libzypp touched /run/reboot-needed); exit 0 otherwise.
ZYPPER_NEEDS_REBOOTING = Command(
    ("zypper", "--non-interactive", "needs-rebooting"),
    ok_exit=frozenset({0, 102}),
    env=ZYPPER_ENV,
    name="zypper-needs-rebooting",
)

ZYPPER_SCAN_PROBES: tuple[Command, ...] = (
    BOOT,
    RPM_QUERY,
    ZYPPER_LIST_UPDATES,
    ZYPPER_LIST_PATCHES,
    ZYPPER_UPDATEINFO,
    ZYPPER_NEEDS_REBOOTING,
)


# ---------------------------------------------------------------------------------------------
# POST-INSTALL (every family): what an install left behind. Read-only; reports, not compliance.
# ---------------------------------------------------------------------------------------------

# Processes that still map a file that was deleted or replaced (an upgraded binary or library):
# one "PID<TAB>COMM<TAB>PATH" line per process and file. Works on every family and on overlayfs,
# where `dnf needs-restarting` sees nothing. Anonymous and special mappings (memfd, /dev/shm,
# SysV shm) are not package files and are left out. A process that exits mid-scan is skipped.
_PROC_MAPS_SH = r"""
for d in /proc/[0-9]*; do
  pid=${d#/proc/}
  [ "$pid" = "$$" ] && continue
  comm=$(cat "$d/comm" 2>/dev/null) || continue
  C="$comm" awk -v pid="$pid" '
    $NF == "(deleted)" && $6 ~ /^\// {
      line = $0
      for (i = 1; i <= 5; i++) sub(/^[^ ]+ +/, "", line)
      sub(/ \(deleted\)$/, "", line)
      if (line ~ /^\/(dev|memfd:|SYSV|run\/user)/) next
      print pid "\t" ENVIRON["C"] "\t" line
    }' "$d/maps" 2>/dev/null
done | sort -u -n
echo "end"
"""
RESTART_PROC_MAPS = Command(script(_PROC_MAPS_SH), privileged=True, name="restart-proc-maps")

# needrestart's batch mode on apt nodes: NEEDRESTART-SVC (services to restart), -KSTA (kernel
# status 0 unknown, 1 current, 2 ABI-compatible upgrade, 3 version upgrade) ... The global
# NEEDRESTART_SUSPEND=1 only silences needrestart's apt hook; unset it anyway for this call.
# Prints "needrestart: absent" when it is not installed.
NEEDRESTART_BATCH = Command(
    script(
        "if command -v needrestart >/dev/null 2>&1; then unset NEEDRESTART_SUSPEND; "
        "exec needrestart -b -r l; else echo 'needrestart: absent'; fi"
    ),
    privileged=True,
    name="needrestart-batch",
)

# zypper's view (lsof): table "PID | PPID | UID | User | Command | Service" or "No processes
# using deleted files found."
ZYPPER_PS = Command(
    ("zypper", "--non-interactive", "ps", "-s"),
    privileged=True,
    env=ZYPPER_ENV,
    name="zypper-ps",
)

# Competing auto-updaters, as strict "key: value" lines between "auto-updaters: 1" and "end":
#   systemd: running|absent       (absent: unit states come from *.wants symlinks)
#   package: NAME                 (installed: unattended-upgrades, dnf-automatic, yum-cron,
#                                  PackageKit/packagekit, yast2-online-update-configuration)
#   apt-periodic: KEY VALUE       (effective APT::Periodic::KEY from apt-config)
#   apt-periodic-file: PATH       (files under /etc/apt/apt.conf.d that set Unattended-Upgrade)
#   unit: NAME STATE              (unit files present; STATE from systemctl is-enabled, or
#                                  enabled/disabled from the *.wants symlinks without systemd)
#   dnf-automatic-apply: yes|no|unset   (apply_updates in /etc/dnf/automatic.conf)
#   yum-cron-apply: yes|no|unset        (apply_updates in /etc/yum/yum-cron.conf)
#   packagekitd: PATH
#   suse-online-update: true|false|unset  (AOU_ENABLE_CRONJOB in sysconfig)
_AUTO_UPDATERS_SH = r"""
echo 'auto-updaters: 1'
if [ -d /run/systemd/system ]; then sd=running; else sd=absent; fi
echo "systemd: $sd"
if command -v dpkg-query >/dev/null 2>&1; then
  for p in unattended-upgrades packagekit; do
    s=$(dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null) || s=
    [ "$s" = installed ] && echo "package: $p"
  done
fi
if command -v rpm >/dev/null 2>&1; then
  for p in dnf-automatic dnf5-plugin-automatic yum-cron PackageKit \
           yast2-online-update-configuration; do
    rpm -q --quiet "$p" 2>/dev/null && echo "package: $p"
  done
fi
if command -v apt-config >/dev/null 2>&1; then
  for k in Enable Update-Package-Lists Unattended-Upgrade; do
    v=$(apt-config shell V "APT::Periodic::$k" 2>/dev/null | sed -n "s/^V='\(.*\)'$/\1/p")
    [ -n "$v" ] && echo "apt-periodic: $k $v"
  done
  for f in /etc/apt/apt.conf.d/*; do
    [ -f "$f" ] && grep -qs 'Unattended-Upgrade' "$f" && echo "apt-periodic-file: $f"
  done
fi
for u in apt-daily.timer apt-daily-upgrade.timer unattended-upgrades.service \
         dnf-automatic.timer dnf-automatic-install.timer dnf-automatic-download.timer \
         dnf-automatic-notifyonly.timer dnf5-automatic.timer yum-cron.service \
         packagekit.service packagekit-offline-update.service os-update.timer; do
  found=
  for dir in /etc/systemd/system /lib/systemd/system /usr/lib/systemd/system; do
    [ -e "$dir/$u" ] && found=1
  done
  [ -n "$found" ] || continue
  if [ "$sd" = running ]; then
    st=$(systemctl is-enabled "$u" 2>/dev/null) || true
    [ -n "$st" ] || st=unknown
  elif ls /etc/systemd/system/*.wants/"$u" >/dev/null 2>&1; then st=enabled
  else st=disabled; fi
  echo "unit: $u $st"
done
conf_bool() {
  [ -r "$1" ] || { echo unset; return; }
  v=$(sed -n "s/^[[:space:]]*$2[[:space:]]*=[[:space:]]*\([A-Za-z0-9]*\).*/\1/p" "$1" | tail -n 1)
  case "$v" in yes|true|1|on|True|Yes) echo yes ;; '') echo unset ;; *) echo no ;; esac
}
d=/etc/dnf/automatic.conf
[ -e "$d" ] && echo "dnf-automatic-apply: $(conf_bool "$d" apply_updates)"
y=/etc/yum/yum-cron.conf
[ -e "$y" ] && echo "yum-cron-apply: $(conf_bool "$y" apply_updates)"
for f in /usr/libexec/packagekitd /usr/lib/packagekit/packagekitd; do
  [ -x "$f" ] && echo "packagekitd: $f"
done
a=/etc/sysconfig/automatic_online_update
if [ -r "$a" ]; then
  v=$(sed -n 's/^AOU_ENABLE_CRONJOB="\{0,1\}\([a-z]*\)"\{0,1\}.*/\1/p' "$a" | tail -n 1)
  echo "suse-online-update: ${v:-unset}"
fi
echo end
"""
AUTO_UPDATERS = Command(script(_AUTO_UPDATERS_SH), name="auto-updaters")

POST_PROBES: dict[str, tuple[Command, ...]] = {
    "apt": (RESTART_PROC_MAPS, NEEDRESTART_BATCH, AUTO_UPDATERS),
    "dnf": (RESTART_PROC_MAPS, AUTO_UPDATERS),
    "zypper": (RESTART_PROC_MAPS, ZYPPER_PS, AUTO_UPDATERS),
}
