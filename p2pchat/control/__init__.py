"""Local control API: the running node on a Unix socket (mode 0600) in its data dir."""
