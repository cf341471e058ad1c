"""Which mount holds a path: parses /proc/self/mountinfo (fs type, device, options, superblock options)."""
import os
from dataclasses import dataclass, field


@dataclass
class MountEntry:
    mount_point: str
    fstype: str
    source: str
    options: set = field(default_factory=set)        # per-mount options (rw, relatime, ...)
    super_options: set = field(default_factory=set)  # per-superblock options (prjquota, ...)
    dev: str = ""                                     # "major:minor"

    @property
    def all_options(self) -> set:
        return self.options | self.super_options


def _unescape(text: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 3 < len(text) + 1 and text[i + 1:i + 4].isdigit():
            out.append(chr(int(text[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def read_mountinfo(path: str = "/proc/self/mountinfo") -> list:
    entries = []
    with open(path) as f:
        for line in f:
            left, _, right = line.rstrip("\n").partition(" - ")
            lf, rf = left.split(), right.split()
            if len(lf) < 6 or len(rf) < 2:
                continue
            entries.append(MountEntry(
                mount_point=_unescape(lf[4]), fstype=rf[0], source=_unescape(rf[1]),
                options=set(lf[5].split(",")),
                super_options=set(rf[2].split(",")) if len(rf) > 2 else set(),
                dev=lf[2]))
    return entries


def find_mount(path: str) -> MountEntry:
    """The mount entry that holds `path` (the longest mount point prefix of its real path)."""
    real = os.path.realpath(path)
    st = os.stat(real)
    dev = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    best = None
    for entry in read_mountinfo():
        mp = entry.mount_point
        if real == mp or real.startswith(mp.rstrip("/") + "/"):
            if best is None or len(mp) >= len(best.mount_point):
                best = entry
    if best is None:
        raise FileNotFoundError(f"no mount holds {path}")
    if best.dev != dev:
        # e.g. btrfs subvolumes report another st_dev; keep the prefix match but remember the real dev
        best = MountEntry(best.mount_point, best.fstype, best.source, best.options, best.super_options, dev)
    return best
