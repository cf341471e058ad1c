"""Commands: version, info, system (df, info), remount-lxcfs, login, logout."""
import sys

from pouch.cli.common import CLIError, print_table

VERSION_FIELDS = ("GoVersion", "KernelVersion", "Os", "Version", "APIVersion", "Arch", "BuildTime",
                  "GitCommit")


def setup(name, parser):
    if name == "system":
        sub = parser.add_subparsers(dest="sub", metavar="COMMAND")
        sub.required = True
        df = sub.add_parser("df", description="Show pouchd disk usage")
        df.add_argument("-v", "--verbose", action="store_true", help="Show detailed information on space usage")
        handlers = {"df": run_df, "info": setup("info", sub.add_parser("info"))}
        return lambda ctx, args: handlers[args.sub](ctx, args)
    if name == "version":
        parser.add_argument("-f", "--format", help="Format the output using the given Go template")
        return run_version
    if name == "info":
        parser.add_argument("-f", "--format", help="Format the output using the given Go template")
        return run_info
    if name == "remount-lxcfs":
        return run_remount_lxcfs
    if name == "login":
        parser.add_argument("server", nargs="?", default="")
        parser.add_argument("-u", "--username")
        parser.add_argument("-p", "--password")
        return run_login
    parser.add_argument("server", nargs="?", default="")
    return run_logout


def run_version(ctx, args):
    info = ctx.client.version()
    if args.format:
        from pouch.cli.formatter import render
        print(render(args.format, info))
        return 0
    # Pouch's CLI prints its Go field names: the API's ApiVersion is shown as APIVersion
    info.setdefault("APIVersion", info.get("ApiVersion", ""))
    print_table([[k + ":", info.get(k, "")] for k in VERSION_FIELDS], pad=1)
    return 0


def _info_lines(info):
    pairs = [
        ("Containers", info.get("Containers")), ("Running", info.get("ContainersRunning")),
        ("Paused", info.get("ContainersPaused")), ("Stopped", info.get("ContainersStopped")),
        ("Images", info.get("Images")), ("ID", info.get("ID")), ("Name", info.get("Name")),
        ("Server Version", info.get("ServerVersion")), ("Storage Driver", info.get("Driver")),
        ("Driver Status", info.get("DriverStatus")), ("Logging Driver", info.get("LoggingDriver")),
        ("Cgroup Driver", info.get("CgroupDriver")), ("Cgroup Version", info.get("CgroupVersion")),
        ("Default Runtime", info.get("DefaultRuntime")),
        ("Runtimes", " ".join(sorted(info.get("Runtimes") or {}))),
        ("Security Options", info.get("SecurityOptions")),
        ("Kernel Version", info.get("KernelVersion")), ("Operating System", info.get("OperatingSystem")),
        ("OSType", info.get("OSType")), ("Architecture", info.get("Architecture")),
        ("CPUs", info.get("NCPU")), ("Total Memory", info.get("MemTotal")),
        ("Pouch Root Dir", info.get("PouchRootDir") or info.get("DockerRootDir")),
        ("Debug Mode", info.get("Debug")), ("Labels", info.get("Labels")),
        ("Insecure Registries", (info.get("RegistryConfig") or {}).get("InsecureRegistryCIDRs")),
        ("Registry Mirrors", (info.get("RegistryConfig") or {}).get("Mirrors")),
        ("P2P Peer", info.get("P2PPeer")),
        ("P2P Bytes", _p2p_bytes(info.get("P2PStats"))),
        ("LxcfsEnabled", info.get("LxcfsEnabled")),
    ]
    lines = []
    for key, value in pairs:
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, list):
            lines.append("%s:" % key)
            for item in value:
                lines.append("  %s" % (": ".join(map(str, item)) if isinstance(item, list) else item))
        else:
            lines.append("%s: %s" % (key, str(value).lower() if isinstance(value, bool) else value))
    lines += _feature_lines(info.get("Features") or {})
    return lines


def _yes_no(flag, detail=""):
    text = "yes" if flag else "no"
    return "%s (%s)" % (text, detail) if detail else text


def _feature_lines(feats):
    """The daemon's detected kernel features (sysinfo.collect), one line each."""
    if not feats:
        return []
    out = ["Kernel Features:"]
    if "CgroupVersion" in feats:
        out.append("  Cgroups: v%s %s, driver %s" % (feats.get("CgroupVersion"), feats.get("CgroupMode", ""),
                                                   feats.get("CgroupDriver", "")))
    if "Overlayfs" in feats:
        usable = feats.get("OverlayfsUsable") or {}
        ok = feats["Overlayfs"] and usable.get("Usable", True)
        out.append("  Overlayfs: " + _yes_no(ok, usable.get("Detail", "")))
    if "Seccomp" in feats:
        out.append("  Seccomp: " + _yes_no(feats["Seccomp"]))
    if "UserNamespaces" in feats:
        remap = feats.get("UsernsRemap")
        detail = "remapped: root is %s:%s, %s ids" % (remap["Uid"], remap["Gid"], remap["Size"]) if remap else ""
        out.append("  User Namespaces: " + _yes_no(feats["UserNamespaces"], detail))
    pq = feats.get("ProjectQuota")
    if isinstance(pq, dict):
        out.append("  Project Quota: " + _yes_no(pq.get("Supported"), pq.get("Detail", "")))
    dq = feats.get("DiskQuota")
    if isinstance(dq, dict):
        out.append("  Disk Quota: %s (%s)" % (dq.get("Backend"), dq.get("Detail", "")))
    lx = feats.get("Lxcfs")
    if isinstance(lx, dict):
        detail = lx.get("Binary") or "lxcfs is not installed"
        out.append("  Lxcfs: " + ("enabled (%s)" % detail if lx.get("Enabled") else
                                  "disabled (start pouchd with --enable-lxcfs; %s)" % detail))
    for key in ("KernelMemory", "BlkioWeight"):
        if key in feats:
            out.append("  %s: %s" % (key, _yes_no(feats[key])))
    if feats.get("Runtimes"):
        out.append("  Runtimes: " + " ".join(feats["Runtimes"]))
    return out


def run_info(ctx, args):
    info = ctx.client.info()
    if args.format:
        from pouch.cli.formatter import render
        print(render(args.format, info))
        return 0
    print("\n".join(_info_lines(info)))
    return 0


def run_remount_lxcfs(ctx, args):
    ctx.client.remount_lxcfs()
    return 0


def run_login(ctx, args):
    username = args.username
    password = args.password
    if not username:
        sys.stdout.write("Username: ")
        sys.stdout.flush()
        username = sys.stdin.readline().strip()
    if not password:
        import getpass
        password = getpass.getpass("Password: ")
    if not username or not password:
        raise CLIError("username and password are required")
    result = ctx.client.login(username, password, args.server) or {}
    print(result.get("Status") or "Login Succeeded")
    return 0


def run_logout(ctx, args):
    ctx.client.logout(args.server or None)
    print("Remove login credential for registry: %s" % (args.server or "default"))
    return 0


def run_df(ctx, args):
    from pouch.cli.common import print_table
    from pouch.cli.units import human_size
    d = ctx.client.df()
    images, containers, volumes = d.get("Images") or [], d.get("Containers") or [], d.get("Volumes") or []

    def reclaim(total, part):
        return "%s (%d%%)" % (human_size(part), round(100 * part / total)) if total else human_size(0)
    img_total = d.get("LayersSize") or 0
    img_unused = sum(i["Size"] - max(i.get("SharedSize") or 0, 0) for i in images if not i.get("Containers"))
    ctr_total = sum(c.get("SizeRw") or 0 for c in containers)
    ctr_idle = sum(c.get("SizeRw") or 0 for c in containers if c.get("State") != "running")
    vol_sizes = [(v["UsageData"]["Size"], v["UsageData"]["RefCount"]) for v in volumes]
    vol_total = sum(s for s, _ in vol_sizes)
    rows = [["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
            ["Images", str(len(images)), str(sum(1 for i in images if i.get("Containers"))),
             human_size(img_total), reclaim(img_total, img_unused)],
            ["Containers", str(len(containers)), str(sum(1 for c in containers if c.get("State") == "running")),
             human_size(ctr_total), reclaim(ctr_total, ctr_idle)],
            ["Local Volumes", str(len(volumes)), str(sum(1 for _, r in vol_sizes if r)),
             human_size(vol_total), reclaim(vol_total, sum(s for s, r in vol_sizes if not r))]]
    print_table(rows)
    if args.verbose:
        print("\nImages space usage:\n")
        print_table([["REPOSITORY:TAG", "IMAGE ID", "SIZE", "SHARED SIZE", "CONTAINERS"]] +
                    [[", ".join(i.get("RepoTags") or ["<none>"]), i["Id"][7:19], human_size(i["Size"]),
                      human_size(max(i.get("SharedSize") or 0, 0)), str(i.get("Containers", 0))] for i in images])
        print("\nContainers space usage:\n")
        print_table([["CONTAINER ID", "IMAGE", "SIZE", "STATUS", "NAMES"]] +
                    [[c["Id"][:12], c.get("Image", ""), human_size(c.get("SizeRw")), c.get("Status", ""),
                      ",".join(n.lstrip("/") for n in c.get("Names") or [])] for c in containers])
        print("\nLocal Volumes space usage:\n")
        print_table([["VOLUME NAME", "LINKS", "SIZE"]] +
                    [[v["Name"], str(v["UsageData"]["RefCount"]), human_size(v["UsageData"]["Size"])] for v in volumes])
    return 0


def _p2p_bytes(stats: dict | None) -> str | None:
    """One line of the P2P peer's counters for pouch info."""
    if not stats:
        return None
    return ("from peers %d, from the supernode %d, from the registry %d; P2P failures %d, hash failures %d"
            % (stats.get("bytesFromPeers", 0), stats.get("bytesFromSupernode", 0),
               stats.get("bytesFromRegistry", 0), stats.get("p2pFailures", 0), stats.get("hashFailures", 0)))
