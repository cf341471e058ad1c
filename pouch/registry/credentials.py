"""Registry credentials kept in a Docker-config.json-like file (default ``~/.pouch/config.json``).

Format: ``{"auths": {"<registry>": {"auth": base64("user:password")}}}``; docker.io is stored
under ``https://index.docker.io/v1/`` as Docker does. The file is 0600 in a 0700 directory and is
replaced atomically.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidReference, NotFound, RegistryError
from .reference import registry_key

DEFAULT_PATH = Path("~/.pouch/config.json")


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def identity(self) -> str:
        """What caches key on (tokens, shared downloads): two requests share only with equal credentials."""
        return hashlib.sha256(f"{self.username}\0{self.password}".encode()).hexdigest()[:32]


# The credentials of the request being served (X-Registry-Auth, a login being checked), for one
# registry host: set by the API layer around the work of one request and seen only by it and the
# tasks it starts (a context variable), never by a concurrent request for the same host.
_REQUEST_AUTH: contextvars.ContextVar[tuple[str, Credentials] | None] = contextvars.ContextVar(
    "pouch_registry_request_auth", default=None)


@contextlib.contextmanager
def request_auth(host: str, creds: Credentials | None):
    """Use ``creds`` for ``host`` in this request only (None: nothing to override)."""
    if creds is None:
        yield
        return
    token = _REQUEST_AUTH.set((host, creds))
    try:
        yield
    finally:
        _REQUEST_AUTH.reset(token)


def request_credentials(host: str) -> tuple[bool, Credentials | None]:
    """(True, creds) when the current request brought credentials for ``host``."""
    cur = _REQUEST_AUTH.get()
    if cur is not None and cur[0] == host:
        return True, cur[1]
    return False, None


class CredentialStore:
    """login/logout/get for registries, persisted in one JSON file."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path or DEFAULT_PATH).expanduser()

    def _load(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise RegistryError(f"credential file {self.path} is not valid JSON: {exc}") from None
        return data if isinstance(data, dict) else {}

    def _save(self, data: dict) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".config-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=2)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, registry: str) -> Credentials | None:
        """Stored credentials for ``registry`` (a host[:port], or docker.io), or None."""
        entry = self._load().get("auths", {}).get(registry_key(registry))
        if not entry or not entry.get("auth"):
            return None
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except ValueError:
            raise RegistryError(f"credential file {self.path}: bad auth entry for {registry}") from None
        return Credentials(user, password)

    def login(self, registry: str, username: str, password: str) -> None:
        """Store credentials (call after the registry accepted them)."""
        if not username or ":" in username:
            raise InvalidReference("username must be non-empty and contain no ':'")
        data = self._load()
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        data.setdefault("auths", {})[registry_key(registry)] = {"auth": token}
        self._save(data)

    def logout(self, registry: str) -> None:
        """Forget credentials; NotFound if there were none."""
        data = self._load()
        if data.get("auths", {}).pop(registry_key(registry), None) is None:
            raise NotFound(f"not logged in to {registry}")
        self._save(data)
