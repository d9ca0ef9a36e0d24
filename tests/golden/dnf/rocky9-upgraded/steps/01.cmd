LC_ALL=C dnf -y upgrade
