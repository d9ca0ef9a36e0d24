LC_ALL=C zypper -n patch
