env LC_ALL=C LANG=C LANGUAGE=C DEBIAN_FRONTEND=noninteractive APT_LISTCHANGES_FRONTEND=none NEEDRESTART_SUSPEND=1 COLUMNS=1000 TZ=UTC sh -c 'for dir in /var/cache/zypp/raw/*/repodata; do
  [ -d "$dir" ] || continue
  alias=${dir%/repodata}; alias=${alias##*/}
  found=
  for f in "$dir"/*updateinfo.xml*; do
    [ -f "$f" ] || continue
    found=1
    echo "=== repo $alias: $f"
    case "$f" in
      *.gz) gzip -dc "$f" ;;
      *.xz) xz -dc "$f" ;;
      *.bz2) bzip2 -dc "$f" ;;
      *.zst) zstd -dc "$f" ;;
      *) cat "$f" ;;
    esac || exit 1
  done
  [ -n "$found" ] || echo "=== repo $alias: none"
done' patchfleet
