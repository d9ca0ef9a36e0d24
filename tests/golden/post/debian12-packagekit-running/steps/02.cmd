(setsid /usr/libexec/packagekitd 3600 </dev/null >/dev/null 2>&1 &); for i in $(seq 50); do pgrep -x packagekitd >/dev/null && break; sleep 0.1; done; pgrep -x packagekitd
