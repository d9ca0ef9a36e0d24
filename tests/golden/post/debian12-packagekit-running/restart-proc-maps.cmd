env LC_ALL=C LANG=C LANGUAGE=C DEBIAN_FRONTEND=noninteractive APT_LISTCHANGES_FRONTEND=none NEEDRESTART_SUSPEND=1 COLUMNS=1000 TZ=UTC sh -c '
for d in /proc/[0-9]*; do
  pid=${d#/proc/}
  [ "$pid" = "$$" ] && continue
  comm=$(cat "$d/comm" 2>/dev/null) || continue
  C="$comm" awk -v pid="$pid" '"'"'
    $NF == "(deleted)" && $6 ~ /^\// {
      line = $0
      for (i = 1; i <= 5; i++) sub(/^[^ ]+ +/, "", line)
      sub(/ \(deleted\)$/, "", line)
      if (line ~ /^\/(dev|memfd:|SYSV|run\/user)/) next
      print pid "\t" ENVIRON["C"] "\t" line
    }'"'"' "$d/maps" 2>/dev/null
done | sort -u -n
echo "end"
' patchfleet
