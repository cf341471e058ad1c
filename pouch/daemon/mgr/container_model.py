"""The container object: its persisted record and its Moby-shaped views.

``Container.meta`` is what the meta store keeps (Moby field names, so the
bridge mostly passes it through); the rest (IO, logger, waiters, lock) lives
only in memory and is rebuilt on restore.
"""
from __future__ import annotations

import asyncio
import calendar
import time

from pouch.api.humanize import human_duration

STATES = ("created", "running", "paused", "restarting", "removing", "exited", "dead")


def now_rfc3339() -> str:
    ns = time.time_ns()
    sec, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:09d}Z"


ZERO_TIME = "0001-01-01T00:00:00Z"


class Container:
    def __init__(self, meta: dict) -> None:
        self.meta = meta
        self.io = None          # ProcessIO while a task exists
        self.logger = None
        self.lock = asyncio.Lock()
        self.exit_waiters: list[asyncio.Future] = []
        self.remove_waiters: list[asyncio.Future] = []
        self.restart_task: asyncio.Task | None = None
        self.attached: set[asyncio.Queue] = set()   # attach clients, kept across restarts
        self.started = asyncio.Event()               # set while a task's IO is open
        self.warnings: list[str] = []                # from the last create
        self.starting = False                        # between task create and Start's reply
        self.pending_exit: tuple[int, int | None] | None = None
        self.remove_task: asyncio.Task | None = None  # an auto-remove (--rm) after an exit
        self.upgrading = False

    # -- identity -------------------------------------------------------
    @property
    def id(self) -> str:
        return self.meta["Id"]

    @property
    def name(self) -> str:
        return self.meta["Name"]

    @property
    def config(self) -> dict:
        return self.meta["Config"]

    @property
    def host_config(self) -> dict:
        return self.meta["HostConfig"]

    @property
    def state(self) -> dict:
        return self.meta["State"]

    @property
    def status(self) -> str:
        return self.state["Status"]

    @property
    def running(self) -> bool:
        return self.state["Status"] in ("running", "paused")

    @property
    def tty(self) -> bool:
        return bool(self.config.get("Tty"))

    # -- state transitions ---------------------------------------------------
    def set_running(self, pid: int) -> None:
        self.state.update(Status="running", Running=True, Paused=False, Restarting=False,
                          OOMKilled=False, Dead=False, Pid=pid, ExitCode=0, Error="",
                          StartedAt=now_rfc3339())

    def set_stopped(self, exit_code: int, error: str = "") -> None:
        self.state.update(Status="exited", Running=False, Paused=False, Restarting=False,
                          Pid=0, ExitCode=exit_code, Error=error, FinishedAt=now_rfc3339())

    def set_paused(self, paused: bool) -> None:
        self.state.update(Status="paused" if paused else "running", Paused=paused)

    def set_restarting(self) -> None:
        self.state.update(Status="restarting", Restarting=True, Running=False, Pid=0)

    # -- views ---------------------------------------------------------------
    def inspect(self) -> dict:
        m = dict(self.meta)
        m["Name"] = "/" + self.name
        m["State"] = dict(self.state)
        m["Config"] = dict(self.config)
        m["HostConfig"] = dict(self.host_config)
        for k in ("SnapshotKey", "ManualStop", "ImageName", "Internal", "Upgrading", "UpgradeBackups",
                  "GraphDriverData"):
            m.pop(k, None)
        m["GraphDriver"] = {"Name": self.meta.get("Driver", ""), "Data": self.meta.get("GraphDriverData") or {}}
        m.setdefault("Mounts", [])
        m.setdefault("NetworkSettings", {"Networks": {}, "Ports": {}, "IPAddress": "", "Gateway": "",
                                         "MacAddress": "", "SandboxKey": ""})
        return m

    def status_text(self) -> str:
        s = self.state
        st = s["Status"]
        if st in ("running", "paused"):
            txt = "Up " + human_duration(time.time() - parse_rfc3339(s["StartedAt"]))
            return txt + " (Paused)" if st == "paused" else txt
        if st == "restarting":
            return f"Restarting ({s['ExitCode']}) " + human_duration(
                time.time() - parse_rfc3339(s["FinishedAt"])) + " ago"
        if st == "exited":
            return f"Exited ({s['ExitCode']}) " + human_duration(
                time.time() - parse_rfc3339(s["FinishedAt"])) + " ago"
        return st.capitalize()

    def _port_list(self) -> list[dict]:
        """/containers/json Ports: published bindings while running, then exposed-only ports."""
        out, seen = [], set()
        if self.running:
            for key, binds in ((self.meta.get("NetworkSettings") or {}).get("Ports") or {}).items():
                port, _, proto = key.partition("/")
                for b in binds or []:
                    out.append({"IP": b.get("HostIp") or "0.0.0.0", "PrivatePort": int(port),
                                "PublicPort": int(b.get("HostPort") or 0), "Type": proto or "tcp"})
                    seen.add(key)
        for key in self.config.get("ExposedPorts") or {}:
            port, _, proto = key.partition("/")
            if key not in seen and port.isdigit():
                out.append({"PrivatePort": int(port), "Type": proto or "tcp"})
        return out

    def summary(self) -> dict:
        """One entry of GET /containers/json."""
        cfg = self.config
        cmd = list(self.meta.get("Args") or [])
        return {
            "Id": self.id, "Names": ["/" + self.name], "Image": cfg.get("Image", ""),
            "ImageID": self.meta.get("Image", ""),
            "Command": " ".join([self.meta.get("Path", "")] + cmd).strip(),
            "Created": int(parse_rfc3339(self.meta["Created"])),
            "Ports": self._port_list(), "Labels": cfg.get("Labels") or {}, "State": self.status,
            "Status": self.status_text(),
            "HostConfig": {"NetworkMode": self.host_config.get("NetworkMode", "default"),
                           "Runtime": self.host_config.get("Runtime", "runc")},
            "NetworkSettings": {"Networks": (self.meta.get("NetworkSettings") or {}).get("Networks", {})},
            "Mounts": self.meta.get("Mounts", []),
            "SizeRw": None,
        }


def parse_rfc3339(s: str) -> float:
    if not s or s.startswith("0001"):
        return 0.0
    base, _, frac = s.rstrip("Z").partition(".")
    # slicing + timegm: 5x faster than strptime, which `ps` pays twice per container
    t = calendar.timegm((int(base[0:4]), int(base[5:7]), int(base[8:10]), int(base[11:13]),
                         int(base[14:16]), int(base[17:19]), 0, 0, 0))
    return t + (float("0." + frac) if frac else 0.0)
