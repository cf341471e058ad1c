"""Per-container /etc/hosts, /etc/hostname and /etc/resolv.conf, written under a dir the caller owns.

Pure renderers (render_hosts, render_resolv) plus `write_files`.  The files are bind-mounted
into running containers, so an update must keep the inode: a new file is created by rename,
an existing one is rewritten in place (a rename would leave the container on the old inode
and peers joining a user network would never show up in its /etc/hosts).
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from .errors import InvalidNetworkConfig

HOSTS_HEADER = """127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""
DEFAULT_DNS = ["8.8.8.8", "8.8.4.4"]   # used only when the host has no usable nameserver (as Docker)


@dataclass
class HostEntry:
    ip: str
    names: list[str]


def parse_extra_host(spec: str) -> HostEntry:
    """`--add-host name:ip` (ip may be IPv6, so split on the first colon)."""
    name, sep, ip = spec.partition(":")
    if not sep or not name or not ip:
        raise InvalidNetworkConfig(f"invalid --add-host {spec!r}: want NAME:IP")
    ip = ip.strip("[]")
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise InvalidNetworkConfig(f"invalid IP address {ip!r} in --add-host {spec!r}") from None
    return HostEntry(ip=ip, names=[name])


def render_hosts(own: list[HostEntry], extra_hosts: list[str], peers: list[HostEntry],
                 base: str = HOSTS_HEADER) -> str:
    lines = [base.rstrip("\n")]
    for e in (parse_extra_host(h) for h in extra_hosts):
        lines.append(f"{e.ip}\t{' '.join(e.names)}")
    for e in own:
        lines.append(f"{e.ip}\t{' '.join(e.names)}")
    for e in peers:
        lines.append(f"{e.ip}\t{' '.join(e.names)}")
    return "\n".join(lines) + "\n"


def render_resolv(host_text: str, dns: list[str], search: list[str], options: list[str],
                  keep_localhost: bool = False) -> str:
    """Container resolv.conf: --dns/--dns-search/--dns-option replace the host's lines of that kind;
    loopback nameservers of the host are dropped (unreachable from a netns) unless keep_localhost."""
    ns, srch, opts = [], [], []
    for line in host_text.splitlines():
        f = line.split()
        if not f or f[0].startswith(("#", ";")):
            continue
        if f[0] == "nameserver" and len(f) > 1:
            ns.append(f[1])
        elif f[0] in ("search", "domain"):
            srch = f[1:]
        elif f[0] == "options":
            opts.extend(f[1:])
    if not keep_localhost:
        ns = [n for n in ns if not _is_loopback(n)]
    for d in dns:
        try:
            ipaddress.ip_address(d)
        except ValueError:
            raise InvalidNetworkConfig(f"invalid --dns {d!r}: not an IP address") from None
    ns = dns or ns or DEFAULT_DNS
    srch = [s for s in search if s != "."] if search else srch
    opts = options or opts
    out = [f"nameserver {n}" for n in ns]
    if srch:
        out.append("search " + " ".join(srch))
    if opts:
        out.append("options " + " ".join(opts))
    return "\n".join(out) + "\n"


def _is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr.split("%")[0]).is_loopback
    except ValueError:
        return False


def _write(path: str, text: str) -> None:
    data = text.encode()
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
        return
    try:
        # in place, same inode: write the new bytes first, then cut any old tail
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def write_files(dir: str, hosts: str, hostname: str, resolv: str) -> dict[str, str]:
    """Write hosts, hostname, resolv.conf into dir; return {"/etc/hosts": path, ...} for bind mounts."""
    os.makedirs(dir, exist_ok=True)
    paths = {"/etc/hosts": os.path.join(dir, "hosts"),
             "/etc/hostname": os.path.join(dir, "hostname"),
             "/etc/resolv.conf": os.path.join(dir, "resolv.conf")}
    _write(paths["/etc/hosts"], hosts)
    _write(paths["/etc/hostname"], hostname + "\n")
    _write(paths["/etc/resolv.conf"], resolv)
    return paths
