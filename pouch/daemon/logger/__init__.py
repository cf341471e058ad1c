"""Log drivers: where container output is kept (json-file)."""
