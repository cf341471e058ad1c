"""`create`/`run` flags and their mapping into the Moby container create body (+ Pouch fields)."""
from pouch.cli.args import REMAINDER
from pouch.cli.common import CLIError, key_value_list
from pouch.cli.units import parse_size


def add_container_flags(p):
    """Declare every create/run flag on a pouch.cli.args parser."""
    a = p.add_argument
    rep = {"action": "append", "default": []}
    a("-i", "--interactive", action="store_true", help="Open container's STDIN")
    a("-t", "--tty", action="store_true", help="Allocate a tty device")
    a("--name", help="Specify name of container")
    a("-e", "--env", **rep, help="Set environment variables for container")
    a("--env-file", **rep, help="Read in a file of environment variables")
    a("-w", "--workdir", help="Set the working directory in a container")
    a("-u", "--user", help="UID")
    a("--entrypoint", help="Overwrite the default ENTRYPOINT of the image")
    a("-l", "--label", **rep, help="Set labels for a container")
    a("--hostname", help="Set container's hostname")
    a("--domainname", help="Set container's domainname")
    a("-v", "--volume", **rep, help="Bind mount volumes to container")
    a("--volumes-from", **rep, help="set volumes from other containers")
    a("--mount", **rep, help="Attach a filesystem mount to the container")
    a("--tmpfs", **rep, help="Mount a tmpfs directory")
    a("--restart", help="Restart policy to apply when container exits")
    a("--stop-signal", help="Signal to stop a container")
    a("--stop-timeout", type=int, help="Timeout (in seconds) to stop a container")
    a("--init", action="store_true", default=None, help="Run an init inside the container")
    a("--runtime", help="OCI runtime to use for this container")
    a("--network", "--net", help="Connect a container to a network")
    a("--ip", help="Set IPv4 address of container endpoint")
    a("--network-alias", **rep, help="Add network-scoped alias for the container")
    a("-p", "--publish", **rep, help="Set container ports mapping")
    a("-P", "--publish-all", action="store_true", help="Publish all exposed ports to random ports")
    a("--expose", **rep, help="Set expose container's ports")
    a("--dns", **rep, help="Set DNS servers")
    a("--dns-search", **rep, help="Set DNS search domains")
    a("--dns-option", "--dns-opt", **rep, help="Set DNS options")
    a("--add-host", **rep, help="Add a custom host-to-IP mapping (host:ip)")
    a("--mac-address", help="Set mac address of container endpoint")
    a("--privileged", action="store_true", help="Give extended privileges to the container")
    a("--disable-network-files", action="store_true",
      help="Disable the generation of network files (/etc/hosts, /etc/hostname, /etc/resolv.conf)")
    a("--cap-add", **rep, help="Add Linux capabilities")
    a("--cap-drop", **rep, help="Drop Linux capabilities")
    a("--security-opt", **rep, help="Security Options")
    a("--device", **rep, help="Add a host device to the container")
    a("--group-add", **rep, help="Add additional groups to join")
    a("--ulimit", **rep, help="Set container ulimit")
    a("--sysctl", **rep, help="Sysctl options")
    a("--shm-size", help="Size of /dev/shm")
    a("--read-only", action="store_true", help="Mount the container's root filesystem as read only")
    a("--log-driver", help="Logging driver for the container")
    a("--log-opt", **rep, help="Log driver options")
    a("-m", "--memory", help="Memory limit")
    a("--memory-swap", help="Swap limit equal to memory + swap, '-1' to enable unlimited swap")
    a("--memory-reservation", help="Memory soft limit")
    a("--memory-swappiness", type=int, help="Container memory swappiness [0, 100]")
    a("--kernel-memory", help="Kernel memory limit")
    a("--cpus", type=float, help="Number of CPUs")
    a("-c", "--cpu-shares", type=int, help="CPU shares (relative weight)")
    a("--cpu-period", type=int, help="Limit CPU CFS (Completely Fair Scheduler) period")
    a("--cpu-quota", type=int, help="Limit CPU CFS (Completely Fair Scheduler) quota")
    a("--cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)")
    a("--cpuset-mems", help="MEMs in which to allow execution (0-3, 0,1)")
    a("--blkio-weight", type=int, help="Block IO (relative weight), between 10 and 1000")
    a("--device-read-bps", **rep, help="Limit read rate (bytes per second) from a device")
    a("--device-write-bps", **rep, help="Limit write rate (bytes per second) to a device")
    a("--device-read-iops", **rep, help="Limit read rate (IO per second) from a device")
    a("--device-write-iops", **rep, help="Limit write rate (IO per second) to a device")
    a("--pids-limit", type=int, help="Set container pids limit")
    a("--oom-kill-disable", action="store_true", default=None, help="Disable OOM Killer")
    a("--oom-score-adj", type=int, help="Tune host's OOM preferences (-1000 to 1000)")
    a("--pid", help="PID namespace to use")
    a("--ipc", help="IPC namespace to use")
    a("--uts", help="UTS namespace to use")
    a("--userns", help="User namespace to use")
    a("--cgroup-parent", help="Optional parent cgroup for the container")
    a("--enableLxcfs", "--enable-lxcfs", dest="enable_lxcfs", action="store_true", default=None,
      help="Enable lxcfs for the container, only effective when enable-lxcfs switched on in Pouchd")
    a("--disk-quota", **rep, help="Set disk quota for container (SIZE or PATH=SIZE), repeatable")
    a("--quota-id", help="Specified quota id, if id < 0, it means pouchd alloc a unique quota id")
    a("--rich", action="store_true", default=None, help="Start container in rich container mode")
    a("--rich-mode", help="Choose one rich container mode. dumb-init(default), systemd, sbin-init")
    a("--initscript", help="Initial script executed in container")
    a("--annotation", "--specific-annotation", dest="annotation", **rep,
      help="Additional annotation for runtime")
    a("--detach-keys", help="Override the key sequence for detaching a container")
    a("image")
    a("command", nargs=REMAINDER)


def _size(value, flag):
    if value is None:
        return None
    if str(value).strip() == "-1":
        return -1
    try:
        return parse_size(value)
    except ValueError:
        raise CLIError("invalid value %r for --%s: want a size like 512m or 1g" % (value, flag))


def parse_restart(value):
    """'on-failure:3' -> {"Name": "on-failure", "MaximumRetryCount": 3}."""
    name, _, count = value.partition(":")
    if name not in ("no", "always", "on-failure", "unless-stopped", ""):
        raise CLIError("invalid restart policy %r: want no, always, on-failure[:N] or unless-stopped" % value)
    if count and name != "on-failure":
        raise CLIError("maximum retry count cannot be used with restart policy '%s'" % name)
    try:
        retries = int(count) if count else 0
    except ValueError:
        raise CLIError("invalid restart policy %r: retry count must be a number" % value)
    return {"Name": name, "MaximumRetryCount": retries}


def _port_range(text):
    if "-" in text:
        lo, hi = text.split("-", 1)
        return list(range(int(lo), int(hi) + 1))
    return [int(text)]


def parse_publish(specs):
    """-p [ip:][hostPort:]containerPort[/proto] -> (ExposedPorts, PortBindings)."""
    exposed, bindings = {}, {}
    for spec in specs:
        port, _, proto = spec.partition("/")
        proto = proto or "tcp"
        parts = port.rsplit(":", 2) if not port.startswith("[") else [port]
        if len(parts) == 3:
            host_ip, host_port, cport = parts
        elif len(parts) == 2:
            host_ip, host_port, cport = "", parts[0], parts[1]
        else:
            host_ip, host_port, cport = "", "", parts[0]
        try:
            cports = _port_range(cport)
            hports = _port_range(host_port) if host_port else [None] * len(cports)
        except ValueError:
            raise CLIError("invalid port specification: %r" % spec)
        if len(hports) != len(cports):
            if len(hports) == 1 and host_port:
                hports = hports * len(cports)
            else:
                raise CLIError("invalid port range in %r" % spec)
        for hp, cp in zip(hports, cports):
            key = "%d/%s" % (cp, proto)
            exposed[key] = {}
            bindings.setdefault(key, []).append({"HostIp": host_ip.strip("[]"),
                                                 "HostPort": str(hp) if hp else ""})
    return exposed, bindings


def parse_mount(spec):
    """--mount type=bind,source=/a,target=/b,readonly -> Moby Mount object."""
    mount = {"Type": "volume"}
    for field in spec.split(","):
        key, sep, value = field.partition("=")
        key = key.strip().lower()
        if key == "type":
            mount["Type"] = value
        elif key in ("source", "src"):
            mount["Source"] = value
        elif key in ("target", "destination", "dst"):
            mount["Target"] = value
        elif key in ("readonly", "ro"):
            mount["ReadOnly"] = value.lower() not in ("false", "0") if sep else True
        elif key == "bind-propagation":
            mount.setdefault("BindOptions", {})["Propagation"] = value
        elif key == "tmpfs-size":
            mount.setdefault("TmpfsOptions", {})["SizeBytes"] = _size(value, "mount")
        elif key == "tmpfs-mode":
            mount.setdefault("TmpfsOptions", {})["Mode"] = int(value, 8)
        elif key == "volume-driver":
            mount.setdefault("VolumeOptions", {}).setdefault("DriverConfig", {})["Name"] = value
        elif key == "volume-nocopy":
            mount.setdefault("VolumeOptions", {})["NoCopy"] = value.lower() not in ("false", "0") if sep else True
        elif key == "volume-label":
            k, _, v = value.partition("=")
            mount.setdefault("VolumeOptions", {}).setdefault("Labels", {})[k] = v
        elif key == "volume-opt":
            k, _, v = value.partition("=")
            mount.setdefault("VolumeOptions", {}).setdefault("DriverConfig", {}) \
                 .setdefault("Options", {})[k] = v
        else:
            raise CLIError("unexpected key %r in --mount %s" % (key, spec))
    if "Target" not in mount:
        raise CLIError("target is required in --mount %s" % spec)
    return mount


def parse_device(spec):
    """/dev/a[:/dev/b[:rwm]] -> {PathOnHost, PathInContainer, CgroupPermissions}."""
    parts = spec.split(":")
    host = parts[0]
    inner, perms = host, "rwm"
    if len(parts) == 2:
        if parts[1] and all(c in "rwm" for c in parts[1]):
            perms = parts[1]
        else:
            inner = parts[1]
    elif len(parts) == 3:
        inner, perms = parts[1], parts[2]
    elif len(parts) > 3:
        raise CLIError("invalid device specification: %s" % spec)
    return {"PathOnHost": host, "PathInContainer": inner, "CgroupPermissions": perms}


def parse_ulimit(spec):
    """nofile=1024[:2048] -> {Name, Soft, Hard}."""
    name, sep, limits = spec.partition("=")
    soft, _, hard = limits.partition(":")
    try:
        return {"Name": name, "Soft": int(soft), "Hard": int(hard or soft)}
    except ValueError:
        raise CLIError("invalid ulimit %r: want name=soft[:hard]" % spec)


def parse_throttle(specs, flag, size=True):
    out = []
    for spec in specs:
        path, _, rate = spec.rpartition(":")
        if not path:
            raise CLIError("invalid --%s %r: want /dev/xxx:RATE" % (flag, spec))
        out.append({"Path": path, "Rate": _size(rate, flag) if size else int(rate)})
    return out


def parse_disk_quota(specs):
    """['10g', '/data=5g'] -> {"/": "10g", "/data": "5g"} (Pouch's DiskQuota map)."""
    out = {}
    for spec in specs:
        path, sep, size = spec.rpartition("=")
        if not sep:
            path, size = "/", spec
        try:
            parse_size(size)
        except ValueError:
            raise CLIError("invalid disk quota %r: want SIZE or PATH=SIZE" % spec)
        out[path or "/"] = size
    return out


def read_env_files(paths):
    env = []
    for path in paths:
        try:
            with open(path) as fh:
                for line in fh:
                    line = line.strip()
                    if line and not line.startswith("#"):
                        env.append(line)
        except OSError as exc:
            raise CLIError("failed to read env file %s: %s" % (path, exc.strerror))
    return env


def _set(d, key, value):
    if value is not None and value != [] and value != {}:
        d[key] = value


def build_create_body(args, attach_stdio=True):
    """Turn parsed create/run flags into the JSON body of POST /containers/create."""
    import os
    env = read_env_files(args.env_file) + [
        e if "=" in e or e not in os.environ else "%s=%s" % (e, os.environ[e]) for e in args.env]
    exposed, bindings = parse_publish(args.publish)
    for spec in args.expose:
        port, _, proto = spec.partition("/")
        for p in _port_range(port):
            exposed.setdefault("%d/%s" % (p, proto or "tcp"), {})
    binds, volumes = [], {}
    for spec in args.volume:
        spec = spec.strip()  # as Pouch: blanks around -v values are trimmed
        if ":" in spec:
            binds.append(spec)
        else:
            volumes[spec] = {}
    tmpfs = {}
    for spec in args.tmpfs:
        path, _, opts = spec.partition(":")
        tmpfs[path] = opts

    config = {"Image": args.image, "Tty": args.tty, "OpenStdin": args.interactive,
              "StdinOnce": args.interactive, "AttachStdin": args.interactive and attach_stdio,
              "AttachStdout": attach_stdio, "AttachStderr": attach_stdio}
    if args.command:
        config["Cmd"] = args.command
    if args.entrypoint is not None:
        import shlex  # imports re: only when --entrypoint is given
        config["Entrypoint"] = shlex.split(args.entrypoint) if args.entrypoint else [""]
    _set(config, "Env", env)
    _set(config, "Labels", key_value_list(args.label, "label"))
    _set(config, "WorkingDir", args.workdir)
    if args.disable_network_files:
        config["DisableNetworkFiles"] = True
    _set(config, "User", args.user)
    _set(config, "Hostname", args.hostname)
    _set(config, "Domainname", args.domainname)
    _set(config, "StopSignal", args.stop_signal)
    _set(config, "StopTimeout", args.stop_timeout)
    _set(config, "ExposedPorts", exposed)
    _set(config, "Volumes", volumes)
    _set(config, "MacAddress", args.mac_address)
    # Pouch extensions on the container config
    _set(config, "DiskQuota", parse_disk_quota(args.disk_quota))
    _set(config, "QuotaID", args.quota_id)
    _set(config, "Rich", args.rich)
    _set(config, "RichMode", args.rich_mode)
    _set(config, "InitScript", args.initscript)
    _set(config, "SpecAnnotation", key_value_list(args.annotation, "annotation"))

    host = {}
    _set(host, "Binds", binds)
    _set(host, "VolumesFrom", args.volumes_from)
    _set(host, "Mounts", [parse_mount(m) for m in args.mount])
    _set(host, "Tmpfs", tmpfs)
    if args.restart:
        host["RestartPolicy"] = parse_restart(args.restart)
    if getattr(args, "rm", False):
        if args.restart and args.restart != "no":
            raise CLIError("Conflicting options: --restart and --rm")
        host["AutoRemove"] = True
    _set(host, "Init", args.init)
    _set(host, "Runtime", args.runtime)
    _set(host, "NetworkMode", args.network)
    _set(host, "PortBindings", bindings)
    if args.publish_all:
        host["PublishAllPorts"] = True
    _set(host, "Dns", args.dns)
    _set(host, "DnsSearch", args.dns_search)
    _set(host, "DnsOptions", args.dns_option)
    _set(host, "ExtraHosts", args.add_host)
    if args.privileged:
        host["Privileged"] = True
    _set(host, "CapAdd", args.cap_add)
    _set(host, "CapDrop", args.cap_drop)
    _set(host, "SecurityOpt", args.security_opt)
    _set(host, "Devices", [parse_device(d) for d in args.device])
    _set(host, "GroupAdd", args.group_add)
    _set(host, "Ulimits", [parse_ulimit(u) for u in args.ulimit])
    _set(host, "Sysctls", key_value_list(args.sysctl, "sysctl"))
    _set(host, "ShmSize", _size(args.shm_size, "shm-size"))
    if args.read_only:
        host["ReadonlyRootfs"] = True
    if args.log_driver or args.log_opt:
        host["LogConfig"] = {"Type": args.log_driver or "", "Config": key_value_list(args.log_opt, "log-opt")}
    _set(host, "PidMode", args.pid)
    _set(host, "IpcMode", args.ipc)
    _set(host, "UTSMode", args.uts)
    _set(host, "UsernsMode", args.userns)
    _set(host, "CgroupParent", args.cgroup_parent)
    host.update(resources_from_args(args))
    _set(host, "EnableLxcfs", args.enable_lxcfs)
    config["HostConfig"] = host

    if args.ip or args.network_alias:
        endpoint = {}
        _set(endpoint, "Aliases", args.network_alias)
        if args.ip:
            endpoint["IPAMConfig"] = {"IPv4Address": args.ip}
        config["NetworkingConfig"] = {"EndpointsConfig": {args.network or "bridge": endpoint}}
    return config


def resources_from_args(args):
    """Resource flags (shared by create/run/update) -> Moby Resources fields."""
    res = {}
    _set(res, "Memory", _size(args.memory, "memory"))
    _set(res, "MemorySwap", _size(args.memory_swap, "memory-swap"))
    _set(res, "MemoryReservation", _size(args.memory_reservation, "memory-reservation"))
    _set(res, "MemorySwappiness", args.memory_swappiness)
    _set(res, "KernelMemory", _size(args.kernel_memory, "kernel-memory"))
    if args.cpus is not None:
        if args.cpu_period or args.cpu_quota:
            raise CLIError("Conflicting options: --cpus and --cpu-period/--cpu-quota")
        res["NanoCpus"] = int(round(args.cpus * 1e9))
    _set(res, "CpuShares", args.cpu_shares)
    _set(res, "CpuPeriod", args.cpu_period)
    _set(res, "CpuQuota", args.cpu_quota)
    _set(res, "CpusetCpus", args.cpuset_cpus)
    _set(res, "CpusetMems", args.cpuset_mems)
    _set(res, "BlkioWeight", args.blkio_weight)
    _set(res, "BlkioDeviceReadBps", parse_throttle(args.device_read_bps, "device-read-bps"))
    _set(res, "BlkioDeviceWriteBps", parse_throttle(args.device_write_bps, "device-write-bps"))
    _set(res, "BlkioDeviceReadIOps", parse_throttle(args.device_read_iops, "device-read-iops", False))
    _set(res, "BlkioDeviceWriteIOps", parse_throttle(args.device_write_iops, "device-write-iops", False))
    _set(res, "PidsLimit", args.pids_limit)
    _set(res, "OomKillDisable", args.oom_kill_disable)
    _set(res, "OomScoreAdj", getattr(args, "oom_score_adj", None))
    return res




def add_update_flags(p):
    """Flags of `pouch update`: resources, restart policy, env, labels."""
    a = p.add_argument
    rep = {"action": "append", "default": []}
    a("-m", "--memory")
    a("--memory-swap")
    a("--memory-reservation")
    a("--memory-swappiness", type=int)
    a("--kernel-memory")
    a("--cpus", type=float)
    a("--cpu-shares", type=int)
    a("--cpu-period", type=int)
    a("--cpu-quota", type=int)
    a("--cpuset-cpus")
    a("--cpuset-mems")
    a("--blkio-weight", type=int)
    a("--device-read-bps", **rep)
    a("--device-write-bps", **rep)
    a("--device-read-iops", **rep)
    a("--device-write-iops", **rep)
    a("--pids-limit", type=int)
    a("--oom-kill-disable", action="store_true", default=None)
    a("--restart")
    a("-e", "--env", **rep)
    a("-l", "--label", **rep)
    a("--disk-quota", **rep)
    a("--annotation", "--specific-annotation", dest="annotation", **rep,
      help="Update specAnnotation of the container (key=value)")
    a("container")


def build_update_body(args):
    """Update flags -> body of POST /containers/{id}/update."""
    body = resources_from_args(args)
    if args.restart:
        body["RestartPolicy"] = parse_restart(args.restart)
    _set(body, "Env", args.env)
    _set(body, "Label", args.label)  # Pouch's UpdateConfig.Label
    _set(body, "DiskQuota", parse_disk_quota(args.disk_quota))
    _set(body, "SpecAnnotation", key_value_list(args.annotation, "annotation"))
    return body
