"""OCI runtimes pouchd can run containers with: RuntimeRegistry, Runtime and typed errors."""
from .errors import InvalidRuntime, RuntimeNotFound
from .registry import DEFAULT, SHIM, Runtime, RuntimeRegistry

__all__ = ["RuntimeRegistry", "Runtime", "SHIM", "DEFAULT", "InvalidRuntime", "RuntimeNotFound"]
