"""pouchd's configuration: command-line flags merged with the JSON config file.

A flag given on the command line wins; a key set both in the file and on the
command line with different values is an error at start-up (nothing is
silently dropped), as is an unknown key in the file.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
from dataclasses import dataclass, field

DEFAULT_SOCKET = "unix:///var/run/pouchd.sock"


@dataclass
class DaemonConfig:
    home: str = "/var/lib/pouch"
    run_dir: str = "/run/pouch"
    listen: list[str] = field(default_factory=lambda: [DEFAULT_SOCKET])
    containerd: str = ""                      # existing containerd socket; empty = start our own
    containerd_binary: str = "containerd"
    namespace: str = "default"
    debug: bool = False
    default_runtime: str = "runc"
    add_runtime: list[str] = field(default_factory=list)
    runtimes: dict = field(default_factory=dict)
    enable_lxcfs: bool = False
    insecure_registries: list[str] = field(default_factory=list)
    registry_mirrors: list[str] = field(default_factory=list)
    p2p_peer: str = ""                      # local P2P peer (pouch.p2p.peer) every pull tries first
    p2p_ca: str = ""                        # with p2p_cert/p2p_key: mutual TLS with an https:// p2p_peer
    p2p_cert: str = ""
    p2p_key: str = ""
    max_concurrent_downloads: int = 3       # per pull, like dockerd
    max_concurrent_uploads: int = 5
    tlsverify: bool = False                 # TCP listeners require client certificates from tlscacert
    tlscacert: str = ""
    tlscert: str = ""                       # with tlskey: TCP listeners speak TLS
    tlskey: str = ""
    insecure_tcp: bool = False              # allow tcp:// listeners without --tlsverify (root for all)
    hooks_dirs: list[str] = field(default_factory=lambda: ["/etc/pouch/hooks.d"])  # OCI hooks JSON
    cgroup_parent: str = "default"           # as Pouch: containers in /default/<id>
    userns_remap: str = ""                    # default | user[:group] | uid[:gid] (subordinate ids)
    snapshotter: str = ""                   # overlayfs | native; empty: overlayfs where it works
    quota_backend: str = "auto"             # disk quota: auto | prjquota | loop | none (pouch.quota.backend)
    bridge_name: str = "p0"
    bip: str = "192.168.5.1/24"             # the default bridge's gateway address and subnet
    pidfile: str = ""                       # empty: /var/run/pouch.pid, or <exec-root>/pouch.pid off default
    labels: list[str] = field(default_factory=list)    # key=value metadata of this daemon (pouch info)
    default_registry: str = ""              # registry of references without a domain (docker.io)
    default_registry_namespace: str = ""    # namespace of one-component names there (library)
    log_driver: str = "json-file"           # containers' log driver when they set none
    log_opts: dict = field(default_factory=dict)       # their log options then (--log-opt k=v)
    allow_multi_snapshotter: bool = False   # start even when another snapshotter holds snapshots
    image_proxy: str = ""                   # HTTP proxy of pulls (pouch updatedaemon --image-proxy)
    volume_plugin_dirs: list[str] = field(default_factory=list)  # empty: Docker's plugin dirs
    config_file: str = ""
    id: str = ""
    enable_cri: bool = False                # serve the Kubernetes CRI (runtime.v1) on listen_cri
    listen_cri: str = "unix:///var/run/pouchcri.sock"
    sandbox_image: str = "registry.k8s.io/pause:3.9"
    cni_bin_dir: str = "/usr/lib/cni"
    cni_conf_dir: str = "/etc/cni/net.d"
    stream_server_port: int = 10010         # CRI exec/attach/port-forward URLs (127.0.0.1)
    cri_stats_collect_period: int = 10      # seconds between writable-layer usage scans
    shim_group_size: int = 16               # containers per shared runc shim (1: a shim each); mgr/shimgroup.py

    @property
    def pidfile_path(self) -> str:
        if self.pidfile:
            return self.pidfile
        if self.run_dir == "/run/pouch":
            return "/var/run/pouch.pid"
        return os.path.join(self.run_dir, "pouch.pid")

    def ensure_id(self) -> None:
        path = os.path.join(self.home, "engine-id")
        try:
            with open(path) as f:
                self.id = f.read().strip()
        except OSError:
            self.id = secrets.token_hex(16)
            os.makedirs(self.home, exist_ok=True)
            with open(path, "w") as f:
                f.write(self.id)


# flag dest -> config-file key
FILE_KEYS = {
    "home": "home-dir", "run_dir": "exec-root-dir", "listen": "listen", "containerd": "containerd",
    "debug": "debug", "default_runtime": "default-runtime", "add_runtime": "add-runtime",
    "enable_lxcfs": "enable-lxcfs", "insecure_registries": "insecure-registries",
    "registry_mirrors": "registry-mirrors", "cgroup_parent": "cgroup-parent", "namespace": "namespace",
    "userns_remap": "userns-remap", "max_concurrent_downloads": "max-concurrent-downloads",
    "max_concurrent_uploads": "max-concurrent-uploads", "hooks_dirs": "hooks-dir",
    "p2p_peer": "p2p-peer", "p2p_ca": "p2p-ca", "p2p_cert": "p2p-cert", "p2p_key": "p2p-key", "tlsverify": "tlsverify", "tlscacert": "tlscacert", "tlscert": "tlscert",
    "tlskey": "tlskey", "insecure_tcp": "insecure-tcp",
    "bridge_name": "bridge-name", "bip": "bip", "snapshotter": "snapshotter",
    "pidfile": "pidfile", "labels": "label", "default_registry": "default-registry",
    "default_registry_namespace": "default-registry-namespace",
    "allow_multi_snapshotter": "allow-multi-snapshotter", "image_proxy": "image-proxy",
    "containerd_binary": "containerd-path", "volume_plugin_dirs": "volume-plugin-dir",
    "quota_backend": "quota-backend",
    "enable_cri": "enable-cri", "listen_cri": "listen-cri", "sandbox_image": "sandbox-image",
    "cni_bin_dir": "cni-bin-dir", "cni_conf_dir": "cni-conf-dir",
    "stream_server_port": "stream-server-port", "cri_stats_collect_period": "cri-stats-collect-period",
    "shim_group_size": "shim-group-size",
}
# Pouch's config file (daemon/config/config.go json tags) nests some keys; they read as flat keys
NESTED_SECTIONS = ("network-config", "bridge-config", "TLS")
# Pouch's names for keys this file also accepts under their flag names
FILE_ALIASES = {"default-namespace": "namespace"}


def flatten(file_vals: dict, source: str) -> dict:
    """Pouch's nested sections (network-config.bridge-config, TLS) as flat keys; default-log-config
    as log-driver / log-opt; add-runtime given as a map as the runtimes table."""
    out: dict = {}

    def put(k, v):
        k = FILE_ALIASES.get(k, k)
        if k in out:
            raise ConfigError(f"config file {source}: key {k} given twice")
        out[k] = v
    for k, v in file_vals.items():
        if k in NESTED_SECTIONS:
            if not isinstance(v, dict):
                raise ConfigError(f"config file {source}: {k} must be an object")
            for k2, v2 in flatten(v, source).items():
                put(k2, v2)
        elif k == "default-log-config":
            if not isinstance(v, dict) or set(v) - {"Type", "Config"}:
                raise ConfigError(f"config file {source}: default-log-config takes Type and Config")
            if v.get("Type"):
                put("log-driver", v["Type"])
            if v.get("Config"):
                put("log-opt", [f"{a}={b}" for a, b in dict(v["Config"]).items()])
        elif k == "add-runtime" and isinstance(v, dict):
            put("runtimes", v)
        else:
            put(k, v)
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pouchd", description="pouchd: the pouch container daemon")
    p.add_argument("--config-file", default="/etc/pouch/config.json")
    p.add_argument("--home-dir", dest="home")
    p.add_argument("--exec-root-dir", dest="run_dir")
    p.add_argument("-l", "--listen", action="append", help="unix:///path or tcp://host:port")
    p.add_argument("--containerd", help="use this existing containerd socket instead of starting one")
    p.add_argument("--containerd-path", dest="containerd_binary")
    p.add_argument("-D", "--debug", action="store_true", default=None)
    p.add_argument("--default-runtime")
    p.add_argument("--add-runtime", action="append", help="name=path of an OCI runtime")
    p.add_argument("--enable-lxcfs", action="store_true", default=None)
    p.add_argument("--insecure-registries", action="append")
    p.add_argument("--registry-mirror", dest="registry_mirrors", action="append")
    p.add_argument("--p2p-peer", help="URL of the local P2P peer (python -m pouch.p2p.peer): pulls go "
                   "through it first, straight to the registry if it fails")
    p.add_argument("--p2p-ca", help="cluster CA the P2P peer's certificate is signed by (https:// --p2p-peer)")
    p.add_argument("--p2p-cert", help="pouchd's client certificate for the P2P peer (signed by the cluster CA)")
    p.add_argument("--p2p-key", help="its private key")
    p.add_argument("--max-concurrent-downloads", type=int, help="layers downloaded at once (default 3)")
    p.add_argument("--max-concurrent-uploads", type=int, help="layers uploaded at once by push (default 5)")
    p.add_argument("--hooks-dir", dest="hooks_dirs", action="append",
                   help="directory of OCI hook JSON files (oci-hooks(5)); default /etc/pouch/hooks.d")
    p.add_argument("--tlsverify", action="store_true", default=None,
                   help="TCP listeners accept only clients with a certificate signed by --tlscacert")
    p.add_argument("--tlscacert", help="CA certificate clients' certificates must be signed by")
    p.add_argument("--tlscert", help="server certificate for TCP listeners (with --tlskey)")
    p.add_argument("--tlskey", help="server private key for TCP listeners")
    p.add_argument("--insecure-tcp", action="store_true", default=None,
                   help="allow tcp:// listeners without --tlsverify: anyone who can connect gets root on "
                        "this host (refused otherwise, as Docker 27+ does)")
    p.add_argument("--cgroup-parent")
    p.add_argument("--userns-remap", help="default | user[:group] | uid[:gid]: run containers in a "
                   "user namespace mapped to that user's /etc/subuid and /etc/subgid ranges")
    p.add_argument("--snapshotter", choices=["overlayfs", "native"],
                   help="containerd snapshotter for image layers (default: overlayfs, native where overlay "
                        "cannot work)")
    p.add_argument("--quota-backend", choices=["auto", "prjquota", "loop", "none"],
                   help="how --disk-quota and volume sizes are enforced: project quota, a sized loop-mounted "
                        "filesystem per container/volume, or not at all (default auto: prjquota where the "
                        "home's filesystem has it, else loop)")
    p.add_argument("--bridge-name", help="device of the default bridge network (p0)")
    p.add_argument("--bip", help="gateway address/prefix of the default bridge network (192.168.5.1/24)")
    p.add_argument("--namespace", "--default-namespace", dest="namespace",
                   help="containerd namespace of this daemon (default: default)")
    p.add_argument("--pidfile", help="file holding pouchd's pid (default /var/run/pouch.pid)")
    p.add_argument("--label", dest="labels", action="append", help="key=value metadata of this daemon")
    p.add_argument("--default-registry", help="registry of image names without one (default docker.io)")
    p.add_argument("--default-registry-namespace",
                   help="namespace of one-component image names in the default registry (default library)")
    p.add_argument("--log-driver", help="default log driver of containers (json-file)")
    p.add_argument("--log-opt", dest="log_opt", action="append", help="default log option key=value")
    p.add_argument("--allow-multi-snapshotter", action="store_true", default=None,
                   help="start even if snapshots of another snapshotter exist")
    p.add_argument("--image-proxy", help="HTTP proxy for image pulls")
    p.add_argument("--volume-plugin-dir", dest="volume_plugin_dirs", action="append",
                   help="where Docker volume plugins' sockets and spec files are found (default "
                        "/run/docker/plugins, /etc/docker/plugins, /usr/lib/docker/plugins)")
    p.add_argument("--enable-cri", action="store_true", default=None,
                   help="serve the Kubernetes CRI (runtime.v1) for kubelet on --listen-cri")
    p.add_argument("--listen-cri", help="CRI socket (default unix:///var/run/pouchcri.sock)")
    p.add_argument("--sandbox-image", help="image of pods' infra containers (default registry.k8s.io/pause:3.9)")
    p.add_argument("--cni-bin-dir", help="CNI plugin binaries for pods (default /usr/lib/cni)")
    p.add_argument("--cni-conf-dir", help="CNI network configuration for pods (default /etc/cni/net.d)")
    p.add_argument("--stream-server-port", type=int, help="port of the CRI streaming server (default 10010)")
    p.add_argument("--cri-stats-collect-period", type=int,
                   help="seconds between the CRI's writable-layer usage scans (default 10)")
    p.add_argument("--shim-group-size", type=int,
                   help="containers that share one runc shim process (default 16; 1: a shim per container). "
                        "Fewer shims use less memory; a shim killed stops all its containers")
    p.add_argument("-v", "--version", action="store_true")
    return p


class ConfigError(Exception):
    pass


def load(argv: list[str] | None = None) -> tuple[DaemonConfig, argparse.Namespace]:
    args = parser().parse_args(argv)
    cfg = DaemonConfig()
    file_vals: dict = {}
    if args.config_file and os.path.exists(args.config_file):
        try:
            with open(args.config_file) as f:
                file_vals = json.load(f)
        except ValueError as e:
            raise ConfigError(f"config file {args.config_file}: invalid JSON: {e}") from None
        if not isinstance(file_vals, dict):
            raise ConfigError(f"config file {args.config_file}: want a JSON object")
        file_vals = flatten(file_vals, args.config_file)
        known = set(FILE_KEYS.values()) | {"runtimes", "log-driver", "log-opt"}
        unknown = set(file_vals) - known
        if unknown:
            raise ConfigError(f"config file {args.config_file}: unknown keys: {', '.join(sorted(unknown))}")
    for dest, key in FILE_KEYS.items():
        flag = getattr(args, dest, None)
        fval = file_vals.get(key)
        if flag is not None and fval is not None and flag != fval and not (
                isinstance(flag, list) and isinstance(fval, list) and sorted(flag) == sorted(fval)):
            raise ConfigError(f"the following directives are specified both as a flag and in the "
                              f"configuration file: {key}: (from flag: {flag}, from file: {fval})")
        val = flag if flag is not None else fval
        if val is not None:
            setattr(cfg, dest, val)
    for key, flag in (("log-driver", args.log_driver), ("log-opt", args.log_opt)):
        fval = file_vals.get(key)
        if flag is not None and fval is not None and flag != fval:
            raise ConfigError(f"the following directives are specified both as a flag and in the "
                              f"configuration file: {key}: (from flag: {flag}, from file: {fval})")
    cfg.log_driver = args.log_driver or file_vals.get("log-driver") or cfg.log_driver
    cfg.log_opts = _log_opts(args.log_opt if args.log_opt is not None else file_vals.get("log-opt") or [])
    if cfg.log_driver == "none" and cfg.log_opts:
        raise ConfigError("--log-opt cannot be used with --log-driver none")
    if "runtimes" in file_vals:
        cfg.runtimes = dict(file_vals["runtimes"])
    cfg.config_file = args.config_file or ""
    cfg.labels = list(dict.fromkeys(cfg.labels))
    for label in cfg.labels:
        k, sep, v = str(label).partition("=")
        if not sep:
            raise ConfigError(f"daemon label {label} must be in format of key=value")
        if not k or not v:
            raise ConfigError(f"key and value in daemon label {label} cannot be empty")
    if cfg.default_registry:
        from pouch.registry.errors import InvalidReference
        from pouch.registry.reference import validate_defaults
        try:
            validate_defaults(cfg.default_registry, cfg.default_registry_namespace)
        except InvalidReference as e:
            raise ConfigError(str(e)) from None
    if not isinstance(cfg.shim_group_size, int) or isinstance(cfg.shim_group_size, bool) \
            or cfg.shim_group_size < 1:
        raise ConfigError(f"invalid --shim-group-size {cfg.shim_group_size!r}: want a number >= 1 "
                          f"(1: a shim per container)")
    if cfg.image_proxy and not cfg.image_proxy.startswith(("http://", "https://")):
        raise ConfigError(f"invalid --image-proxy {cfg.image_proxy!r}: want http://host:port")
    try:
        import ipaddress
        ipaddress.ip_interface(cfg.bip)
    except ValueError:
        raise ConfigError(f"invalid --bip {cfg.bip!r}: want an address with a prefix, like 192.168.5.1/24") from None
    if cfg.p2p_peer and not cfg.p2p_peer.startswith(("http://", "https://")):
        raise ConfigError(f"invalid --p2p-peer {cfg.p2p_peer!r}: want http://host:port")
    if len({bool(cfg.p2p_ca), bool(cfg.p2p_cert), bool(cfg.p2p_key)}) != 1:
        raise ConfigError("--p2p-ca, --p2p-cert and --p2p-key go together")
    if cfg.p2p_ca and not cfg.p2p_peer.startswith("https://"):
        raise ConfigError("--p2p-ca/--p2p-cert/--p2p-key need an https:// --p2p-peer")
    if bool(cfg.tlscert) != bool(cfg.tlskey):
        raise ConfigError("--tlscert and --tlskey go together")
    if cfg.tlsverify and not (cfg.tlscacert and cfg.tlscert):
        raise ConfigError("--tlsverify needs --tlscacert, --tlscert and --tlskey")
    plain = [a for a in cfg.listen if a.startswith("tcp://")] if not cfg.tlsverify else []
    if plain and not cfg.insecure_tcp:
        raise ConfigError(f"refusing to listen on {plain[0]} without --tlsverify: anyone who can connect "
                          f"would have root on this host; use --tlsverify --tlscacert --tlscert --tlskey, "
                          f"or --insecure-tcp to accept the risk")
    for key in ("tlscacert", "tlscert", "tlskey"):
        if getattr(cfg, key) and not os.path.isfile(getattr(cfg, key)):
            raise ConfigError(f"--{key} {getattr(cfg, key)}: no such file")
    for key in ("max_concurrent_downloads", "max_concurrent_uploads"):
        val = getattr(cfg, key)
        if not isinstance(val, int) or isinstance(val, bool) or val < 1:
            raise ConfigError(f"invalid --{key.replace('_', '-')} {val!r}: want a positive integer")
    if cfg.enable_cri and not cfg.listen_cri.startswith("unix://"):
        raise ConfigError(f"invalid --listen-cri {cfg.listen_cri!r}: want unix:///path")
    if args.containerd_binary:
        cfg.containerd_binary = args.containerd_binary
    return cfg, args


def _log_opts(items) -> dict:
    out = {}
    for item in items:
        k, sep, v = str(item).partition("=")
        if not sep or not k:
            raise ConfigError(f"invalid --log-opt {item!r}: want key=value")
        out[k] = v
    return out
