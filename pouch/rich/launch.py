"""How a rich container starts: PID 1, the command under it, the initscript before it.

Modes (``--rich-mode``, default dumb-init; Pouch's names):

- ``dumb-init``: a minimal init reaps zombies and forwards signals to the command's process
  group.  The image's own ``/usr/bin/dumb-init`` when it has one; otherwise the host's static
  tini (Debian's tini-static, the same job) mounted read-only at ``/sbin/docker-init``.
- ``sbin-init``: the image's ``/sbin/init`` (sysvinit, busybox init, systemd, ...) is PID 1 and
  starts the image's services as on a machine.  A command given explicitly runs in the
  background, a child of that init; the image's own CMD/ENTRYPOINT is not used.
- ``systemd``: the image's systemd is PID 1, with what it needs in a container: ``container=pouch``
  in its environment, tmpfs on /run, /run/lock and /tmp, a writable view of its own cgroups,
  and SIGRTMIN+3 (a clean shutdown) as stop signal.  Commands are as for sbin-init.

``--initscript PATH`` (a path in the container) runs before the command or init at every start,
through the image's /bin/sh; if it fails the container exits with its status.  The environment
carries ``rich_mode=true`` and ``rich_mode_launch_manner=<mode>``, as Pouch sets them.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from pouch.errtypes import InvalidArgument
from pouch.oci.rootpath import resolve

MODES = ("dumb-init", "sbin-init", "systemd")
HOST_INIT = "/usr/bin/tini-static"
HOST_INIT_PATH = "/sbin/docker-init"
SYSTEMD_PATHS = ("lib/systemd/systemd", "usr/lib/systemd/systemd")

# $1: initscript ("" for none), then the command.  Runs the script, then becomes the command.
_RUN_SCRIPT_THEN_EXEC = (
    'script="$1"; shift; '
    'if [ -n "$script" ]; then "$script" || { rc=$?; echo "pouch: initscript $script failed ($rc)" >&2; exit $rc; }; fi; '
    'exec "$@"')
# $1: initscript, $2: init; then the command, started in the background before init takes over PID 1
_RUN_SCRIPT_THEN_INIT = (
    'script="$1"; init="$2"; shift 2; '
    'if [ -n "$script" ]; then "$script" || { rc=$?; echo "pouch: initscript $script failed ($rc)" >&2; exit $rc; }; fi; '
    'if [ $# -gt 0 ]; then "$@" & fi; '
    'exec "$init"')


@dataclass
class RichLaunch:
    args: list[str]
    mounts: list[dict] = field(default_factory=list)
    writable_cgroups: bool = False


def validate(config: dict) -> None:
    """Refuse bad rich-mode settings at create (InvalidArgument)."""
    rich, mode, script = config.get("Rich"), config.get("RichMode") or "", config.get("InitScript") or ""
    if not rich and mode:
        raise InvalidArgument("must first enable rich mode, then specify a rich mode type")
    if not rich and script:
        raise InvalidArgument("--initscript needs rich mode (--rich)")
    if mode and mode not in MODES:
        raise InvalidArgument(f"invalid rich mode {mode!r}: want one of {', '.join(MODES)}")
    if script and not script.startswith("/"):
        raise InvalidArgument(f"initscript {script!r} must be an absolute path in the container")


def launch_env(config: dict) -> list[str]:
    """What a rich container's environment carries (its config's Env, so exec sees it too)."""
    if not config.get("Rich"):
        return []
    mode = config.get("RichMode") or "dumb-init"
    return ["rich_mode=true", f"rich_mode_launch_manner={mode}"] + (["container=pouch"] if mode == "systemd" else [])


def stop_signal(config: dict) -> str | None:
    """The stop signal a rich mode implies when none was given."""
    if config.get("Rich") and (config.get("RichMode") or "dumb-init") == "systemd":
        return "SIGRTMIN+3"
    return None


def plan(config: dict, args: list[str], layer_dirs: list[str]) -> RichLaunch:
    """The process of a rich container whose plain command would be ``args``."""
    mode = config.get("RichMode") or "dumb-init"
    script = config.get("InitScript") or ""
    if script and not _exists(layer_dirs, "bin/sh"):
        raise InvalidArgument("--initscript needs /bin/sh in the image")
    if mode == "dumb-init":
        if not args:
            raise InvalidArgument("No command specified")
        mounts = []
        if _exists(layer_dirs, "usr/bin/dumb-init"):
            init = ["/usr/bin/dumb-init", "--"]
        elif os.path.exists(HOST_INIT):
            init = [HOST_INIT_PATH, "-g", "--"]  # -g: signals go to the command's process group
            mounts.append({"destination": HOST_INIT_PATH, "type": "bind", "source": HOST_INIT,
                           "options": ["rbind", "ro"]})
        else:
            raise InvalidArgument(f"rich mode dumb-init: the image has no /usr/bin/dumb-init and the "
                                  f"host no {HOST_INIT} (Debian package tini)")
        if script:
            args = ["/bin/sh", "-c", _RUN_SCRIPT_THEN_EXEC, "pouch-initscript", script, *args]
        return RichLaunch(init + args, mounts)
    user_cmd = list(config.get("Cmd") or []) if isinstance(config.get("Cmd"), list) else \
        ([config["Cmd"]] if config.get("Cmd") else [])
    if mode == "sbin-init":
        if not _exists(layer_dirs, "sbin/init"):
            raise InvalidArgument("rich mode sbin-init: the image has no /sbin/init")
        init, launch = "/sbin/init", RichLaunch([])
    else:
        found = next((p for p in SYSTEMD_PATHS if _exists(layer_dirs, p)), None)
        if found is None:
            raise InvalidArgument("rich mode systemd: the image has no /lib/systemd/systemd")
        init = "/" + found
        launch = RichLaunch([], _systemd_tmpfs(), writable_cgroups=True)
    if script or user_cmd:
        if not _exists(layer_dirs, "bin/sh"):
            raise InvalidArgument(f"rich mode {mode} with a command needs /bin/sh in the image")
        launch.args = ["/bin/sh", "-c", _RUN_SCRIPT_THEN_INIT, "pouch-init", script, init, *user_cmd]
    else:
        launch.args = [init]
    return launch


def _systemd_tmpfs() -> list[dict]:
    return [{"destination": d, "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "nodev", "mode=755" if d != "/tmp" else "mode=1777"] + (
                 ["noexec"] if d == "/run/lock" else [])}
            for d in ("/run", "/run/lock", "/tmp")]


def _exists(layer_dirs: list[str], rel: str) -> bool:
    """Whether ``/rel`` exists in the image's merged view (layers top first): whiteouts hide
    lower files, and symlinks (``/sbin -> usr/sbin``) resolve across layers, inside the image."""
    try:
        return resolve(lambda r: _lookup(layer_dirs, r), rel)[1]
    except OSError:  # a symlink loop
        return False


def _lookup(layer_dirs: list[str], rel: str) -> tuple[str, int] | None:
    """(host path, st_mode) of ``rel`` in the top-most layer that has it, None if absent/whited out."""
    parent, name = os.path.split(rel)
    for d in layer_dirs:
        p = os.path.join(d, rel)
        try:
            st = os.lstat(p)
        except (FileNotFoundError, NotADirectoryError):
            if os.path.lexists(os.path.join(d, parent, ".wh." + name)):
                return None  # an aufs-style whiteout (image archives)
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            return None  # an overlay whiteout
        return p, st.st_mode
    return None
