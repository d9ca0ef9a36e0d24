dnf -y upgrade fake-daemon
