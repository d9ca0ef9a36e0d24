apt-get install -y fake-daemon
