"""pouch: PouchContainer in Python (pouchd daemon + pouch CLI)."""
__version__ = "0.1.0"
