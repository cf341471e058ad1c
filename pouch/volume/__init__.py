"""Volumes: local driver, reference counting, copy-up, and -v/--mount/--tmpfs parsing (see manager.py, mounts.py)."""
