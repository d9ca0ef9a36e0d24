env LC_ALL=C LANG=C LANGUAGE=C DEBIAN_FRONTEND=noninteractive APT_LISTCHANGES_FRONTEND=none NEEDRESTART_SUSPEND=1 COLUMNS=1000 TZ=UTC sh -c '
echo '"'"'auto-updaters: 1'"'"'
if [ -d /run/systemd/system ]; then sd=running; else sd=absent; fi
echo "systemd: $sd"
if command -v dpkg-query >/dev/null 2>&1; then
  for p in unattended-upgrades packagekit; do
    s=$(dpkg-query -W -f '"'"'${db:Status-Status}'"'"' "$p" 2>/dev/null) || s=
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
    v=$(apt-config shell V "APT::Periodic::$k" 2>/dev/null | sed -n "s/^V='"'"'\(.*\)'"'"'$/\1/p")
    [ -n "$v" ] && echo "apt-periodic: $k $v"
  done
  for f in /etc/apt/apt.conf.d/*; do
    [ -f "$f" ] && grep -qs '"'"'Unattended-Upgrade'"'"' "$f" && echo "apt-periodic-file: $f"
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
  case "$v" in yes|true|1|on|True|Yes) echo yes ;; '"'"''"'"') echo unset ;; *) echo no ;; esac
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
  v=$(sed -n '"'"'s/^AOU_ENABLE_CRONJOB="\{0,1\}\([a-z]*\)"\{0,1\}.*/\1/p'"'"' "$a" | tail -n 1)
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
' patchfleet
