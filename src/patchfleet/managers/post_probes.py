"""Post-install probes every family sends: what an install left behind. Read-only; they feed
reports, not compliance. Each family adds its own restart probe (needrestart on apt nodes,
``zypper ps`` on zypper nodes) in its module.
"""

from __future__ import annotations

from typing import Any

from patchfleet.managers.base import PackageManagerSupport, Probe, on_stdout
from patchfleet.parsers import restarts
from patchfleet.parsers.restarts import AutoUpdaters, RestartState
from patchfleet.transport.base import Command, script

# Processes that still map a file that was deleted or replaced (an upgraded binary or library).
# Works on every family and on overlayfs, where `dnf needs-restarting` sees nothing. One
# program with fixed arguments (no shell, so sudoers can name it exactly): find prints, through
# grep -H, every process's /proc/PID/comm line and the /proc/PID/maps lines ending in
# "(deleted)"; the parser pairs them by pid and leaves out special mappings. Root reads every
# process's maps. grep exits 1 for a batch without a match and processes vanish mid-read, so
# find's exit 1 is normal.
RESTART_PROC_MAPS: Probe[RestartState | None] = Probe(
    Command(
        ("find", "/proc", "-mindepth", "2", "-maxdepth", "2",
         "(", "-name", "comm", "-exec", "grep", "-s", "-H", "-e", "^", "{}", "+", ")", "-o",
         "(", "-name", "maps", "-exec", "grep", "-s", "-H", "-e", "(deleted)$", "{}", "+", ")"),
        privileged=True,
        ok_exit=frozenset({0, 1}),
        name="restart-proc-maps",
    ),
    on_stdout(restarts.parse_proc_maps),
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
#   processes: probed             (always: the process lines below are complete)
#   process: NAME                 (an updater's process running now, by /proc/PID/comm:
#                                  packagekitd, unattended-upgr[ades], dnf-automatic, yum-cron)
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
echo "processes: probed"
for d in /proc/[0-9]*; do
  c=$(cat "$d/comm" 2>/dev/null) || continue
  case "$c" in
    packagekitd|unattended-upgr|dnf-automatic|yum-cron) echo "process: $c" ;;
  esac
done | sort -u
echo end
"""
AUTO_UPDATERS: Probe[AutoUpdaters] = Probe(
    Command(script(_AUTO_UPDATERS_SH), name="auto-updaters"),
    on_stdout(restarts.parse_auto_updaters),
)


def post_install_probes(support: PackageManagerSupport) -> tuple[Probe[Any], ...]:
    """Every post-install probe of ``support``'s nodes, in the order they are sent."""
    return (*support.restart_probes, AUTO_UPDATERS)
