zypper -n --no-refresh update -y fake-daemon
