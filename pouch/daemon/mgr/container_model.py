"""The container object: its persisted record and its API views.

A container's record in the meta store is one flat JSON object, as every pouchd wrote it.  In
memory it is two parts: ``Container.meta``, the Moby-named fields (``RECORD_DEFAULTS`` lists
them with their defaults; mgr/upgrade.py adds its ``Upgrading``/``UpgradeBackups`` markers), and
``Container.private``, a typed ``Private`` record of pouchd's own fields (snapshot key, manual
stop, the networking config given at create, the shim group), taken out of the record on load and put back by
``record()`` when it is saved.  ``Container.from_record`` loads a record as any earlier pouchd
wrote it (missing fields get their defaults; exec ids, which do not survive pouchd, are
dropped).  The API views are explicit: ``inspect()`` shows the fields of
``INSPECT_FIELDS`` only (private ones never leak, whatever a module stores) and ``summary()`` is
one ``ps`` row (``summary_json`` its JSON text, cached between two saves of the record: ``ps``
of 1,000 containers serializes only their time-dependent Status).  The rest (IO, logger, waiters, lock) lives only in memory and is rebuilt on
restore.
"""
from __future__ import annotations

import asyncio
import calendar
import copy
from dataclasses import dataclass, field
import json
import time

from pouch.api.humanize import human_duration

STATES = ("created", "running", "paused", "restarting", "removing", "exited", "dead")


def now_rfc3339() -> str:
    ns = time.time_ns()
    sec, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:09d}Z"


ZERO_TIME = "0001-01-01T00:00:00Z"


# every persisted field and its default (a record from an older pouchd may lack some)
RECORD_DEFAULTS: dict = {
    "Id": "", "Name": "", "Created": ZERO_TIME, "Image": "", "Path": "", "Args": [],
    "Config": {}, "HostConfig": {}, "State": {}, "RestartCount": 0, "Driver": "", "Platform": "linux",
    "LogPath": "", "ResolvConfPath": "", "HostnamePath": "", "HostsPath": "", "MountLabel": "",
    "ProcessLabel": "", "AppArmorProfile": "", "ExecIDs": None,
}
INSPECT_FIELDS = ("Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath", "HostnamePath",
                  "HostsPath", "LogPath", "Name", "RestartCount", "Driver", "Platform", "MountLabel",
                  "ProcessLabel", "AppArmorProfile", "ExecIDs", "HostConfig", "Mounts", "Config",
                  "NetworkSettings", "SizeRw", "SizeRootFs")
STATE_DEFAULTS = {"Status": "created", "Running": False, "Paused": False, "Restarting": False,
                  "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
                  "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME}
EMPTY_NETWORK_SETTINGS = {"Networks": {}, "Ports": {}, "IPAddress": "", "Gateway": "", "MacAddress": "",
                          "SandboxKey": ""}


@dataclass
class Private:
    """pouchd's own fields of a container (stored flat beside the Moby ones, never shown)."""

    snapshot_key: str
    manual_stop: bool = False  # stopped by the user: no restart policy restarts it
    networking_config: dict = field(default_factory=dict)  # create's NetworkingConfig (--ip, aliases)
    shim_group: str = ""  # the runc shim group it shares a shim with (mgr/shimgroup.py); "" = its own

    @classmethod
    def take(cls, meta: dict) -> "Private":
        """Pop the private fields out of a stored record (or a fresh one from create)."""
        internal = meta.pop("Internal", None) or {}
        return cls(snapshot_key=meta.pop("SnapshotKey", "") or meta.get("Id", ""),
                   manual_stop=bool(meta.pop("ManualStop", False)),
                   networking_config=dict(internal.get("NetworkingConfig") or {}),
                   shim_group=str(internal.get("ShimGroup") or ""))

    def record(self) -> dict:
        return {"SnapshotKey": self.snapshot_key, "ManualStop": self.manual_stop,
                "Internal": {"NetworkingConfig": self.networking_config,
                             **({"ShimGroup": self.shim_group} if self.shim_group else {})}}


class Container:
    @classmethod
    def from_record(cls, meta: dict) -> "Container":
        """A container from its meta-store record, as this or an earlier pouchd wrote it."""
        for k, v in RECORD_DEFAULTS.items():
            if k not in meta:
                meta[k] = copy.deepcopy(v)
        meta["State"] = {**STATE_DEFAULTS, **(meta.get("State") or {})}
        meta["ExecIDs"] = None  # execs live in memory only: none survives a pouchd restart
        return cls(meta)

    def __init__(self, meta: dict) -> None:
        self.private = Private.take(meta)
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
        self.stopping = False  # a stop holds the lock and waits for the exit
        self.prepared_mounts = None  # (snapshot key, mounts) from create, for the first start
        # no task of it can exist (a fresh create, or its exit's handling deleted the task): start
        # and removal skip their Tasks/Delete; a restored container does not know, so False
        self.task_deleted = False
        self.rev = 0  # bumped by every save (ContainerManager.save): cached views are rebuilt
        self._summary_cache: tuple | None = None  # (key, JSON before Status, JSON after it)

    def record(self) -> dict:
        """What the meta store keeps: the Moby fields and the private ones, flat."""
        return {**self.meta, **self.private.record()}

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
        """``GET /containers/{id}/json``: the fields of INSPECT_FIELDS, copied."""
        m = {k: self.meta[k] for k in INSPECT_FIELDS if k in self.meta}
        m["Name"] = "/" + self.name
        m["State"] = dict(self.state)
        m["Config"] = dict(self.config)
        m["HostConfig"] = dict(self.host_config)
        m["GraphDriver"] = {"Name": self.meta.get("Driver", ""), "Data": self.meta.get("GraphDriverData") or {}}
        m["Mounts"] = m.get("Mounts") or []
        m["NetworkSettings"] = m.get("NetworkSettings") or dict(EMPTY_NETWORK_SETTINGS)
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


_STATUS_MARK = "\x00status\x00"
_STATUS_MARK_JSON = json.dumps(_STATUS_MARK)


def summary_json(c: Container, view) -> str:
    """``json.dumps(view(c.summary()))``, from a cache of all but its Status (a time-dependent
    text, computed each time) kept until the record is saved again or the state, pid or name
    change.  ``view``: the API face's transform of a summary (it maps Status on its own too)."""
    st = c.state
    key = (c.rev, view, st["Status"], st.get("Pid"), st.get("ExitCode"), c.name)
    cached = c._summary_cache
    if cached is None or cached[0] != key:
        s = c.summary()
        s["Status"] = _STATUS_MARK
        head, _, tail = json.dumps(view(s)).partition(_STATUS_MARK_JSON)
        cached = c._summary_cache = (key, head, tail)
    text = c.status_text()
    status = _status_json.get((view, text))  # containers started together share their text
    if status is None:
        if len(_status_json) > 4096:
            _status_json.clear()
        status = _status_json[(view, text)] = json.dumps(view({"Status": text, "State": st["Status"]})["Status"])
    return cached[1] + status + cached[2]


_status_json: dict = {}


def parse_rfc3339(s: str) -> float:
    if not s or s.startswith("0001"):
        return 0.0
    base, _, frac = s.rstrip("Z").partition(".")
    # slicing + timegm: 5x faster than strptime, which `ps` pays twice per container
    t = calendar.timegm((int(base[0:4]), int(base[5:7]), int(base[8:10]), int(base[11:13]),
                         int(base[14:16]), int(base[17:19]), 0, 0, 0))
    return t + (float("0." + frac) if frac else 0.0)
