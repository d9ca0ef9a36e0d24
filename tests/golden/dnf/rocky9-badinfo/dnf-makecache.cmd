env LC_ALL=C LANG=C LANGUAGE=C DEBIAN_FRONTEND=noninteractive APT_LISTCHANGES_FRONTEND=none NEEDRESTART_SUSPEND=1 COLUMNS=1000 TZ=UTC dnf --setopt=exit_on_lock=True makecache --refresh
