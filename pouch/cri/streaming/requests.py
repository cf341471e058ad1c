"""The streaming requests a token stands for (what GetExec, GetAttach and GetPortForward asked)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ExecRequest:
    container_id: str
    cmd: list
    tty: bool = False
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True


@dataclass(frozen=True)
class AttachRequest:
    container_id: str
    tty: bool = False
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True


@dataclass(frozen=True)
class PortForwardRequest:
    sandbox_id: str
    ports: list = field(default_factory=list)
