"""Commands: volume (create, ls, inspect, rm, prune) and network (create, ls, inspect, rm, prune, connect,
disconnect)."""
from pouch.cli.common import CLIError, filters_from_opts, key_value_list, print_table


def setup(name, parser):
    sub = parser.add_subparsers(dest="sub", metavar="COMMAND")
    sub.required = True
    return _setup_volume(sub) if name == "volume" else _setup_network(sub)


def _setup_volume(sub):
    p = sub.add_parser("create")
    p.add_argument("-n", "--name", dest="vname")
    p.add_argument("-d", "--driver", default="local")
    p.add_argument("-o", "--option", "--opt", dest="opts", action="append", default=[])
    p.add_argument("-l", "--label", action="append", default=[])
    p.add_argument("-s", "--selector", action="append", default=[], help="Set volume selectors (key=value)")
    p.add_argument("positional_name", nargs="?")
    p = sub.add_parser("ls", aliases=["list"])
    p.add_argument("-q", "--quiet", action="store_true", help="Only display volume names")
    p.add_argument("--size", action="store_true", help="Display volume size")
    p.add_argument("--mountpoint", action="store_true", help="Display volume mountpoint")
    p.add_argument("-f", "--filter", action="append", default=[])
    p = sub.add_parser("inspect")
    p.add_argument("-f", "--format")
    p.add_argument("names", nargs="+")
    p = sub.add_parser("rm", aliases=["remove"])
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("names", nargs="+")
    p = sub.add_parser("prune")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append", default=[])
    return run_volume


def _volume_rows(vols, args):
    """Pouch's `volume ls` table: -q keeps the VOLUME NAME header (as Pouch prints it)."""
    head = ["VOLUME NAME"] if args.quiet else \
        ["DRIVER", "VOLUME NAME"] + ["SIZE"] * args.size + ["MOUNT POINT"] * args.mountpoint
    rows = [head]
    for v in vols:
        row = [v["Name"]] if args.quiet else [v.get("Driver", ""), v["Name"]]
        if args.size:
            row.append(str(((v.get("Status") or {}).get("size")) or "ulimit"))
        if args.mountpoint:
            row.append(v.get("Mountpoint", ""))
        rows.append(row)
    return rows


def run_volume(ctx, args):
    c = ctx.client
    if args.sub == "create":
        opts = key_value_list(args.opts, "option")
        for sel in args.selector:  # Pouch: selectors travel as selector.<key> driver options
            k, sep, v = sel.partition("=")
            if not sep or not k or not v:
                raise CLIError("unknown selector %s: selector format must be key=value" % sel)
            opts["selector." + k] = v
        vol = c.create_volume(args.vname or args.positional_name, args.driver, opts,
                              key_value_list(args.label, "label"))
        print(vol.get("Name", ""))
    elif args.sub in ("ls", "list"):
        if args.quiet and (args.size or args.mountpoint):
            raise CLIError("Conflicting options: --size (or --mountpoint) and -q")
        vols = (c.volumes(filters_from_opts(args.filter)) or {}).get("Volumes") or []
        print_table(_volume_rows(vols, args))
    elif args.sub == "inspect":
        from pouch.cli.inspect import inspect_objects, print_objects
        objs, errors = inspect_objects(c, args.names, "volume")
        print_objects(objs, args.format)
        if errors:
            raise CLIError("; ".join(errors))
    elif args.sub in ("rm", "remove"):
        for name in args.names:
            c.remove_volume(name, force=args.force)
            print(name)
    else:
        result = c.prune_volumes(filters_from_opts(args.filter)) or {}
        for name in result.get("VolumesDeleted") or []:
            print(name)
    return 0


def _setup_network(sub):
    p = sub.add_parser("create")
    p.add_argument("-d", "--driver", default="bridge")
    p.add_argument("--subnet", action="append", default=[], help="Subnet (one IPv4, one IPv6 with --enable-ipv6)")
    p.add_argument("--gateway", action="append", default=[], help="Gateway (one per subnet)")
    p.add_argument("--ip-range")
    p.add_argument("--enable-ipv6", "--ipv6", dest="ipv6", action="store_true", help="Enable IPv6 networking")
    p.add_argument("--ipam-opt", action="append", default=[], help="IPAM driver options (key=value)")
    p.add_argument("-o", "--option", "--opt", dest="opts", action="append", default=[])
    p.add_argument("-l", "--label", action="append", default=[])
    p.add_argument("--internal", action="store_true")
    p.add_argument("-n", "--name", dest="nname")
    p.add_argument("positional_name", nargs="?")
    p = sub.add_parser("ls", aliases=["list"])
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p = sub.add_parser("inspect")
    p.add_argument("-f", "--format")
    p.add_argument("names", nargs="+")
    p = sub.add_parser("rm", aliases=["remove"])
    p.add_argument("names", nargs="+")
    p = sub.add_parser("prune")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append", default=[])
    for verb in ("connect", "disconnect"):
        p = sub.add_parser(verb)
        if verb == "connect":
            p.add_argument("--alias", action="append", default=[])
            p.add_argument("--ip")
        else:
            p.add_argument("-f", "--force", action="store_true")
        p.add_argument("network")
        p.add_argument("container")
    return run_network


def run_network(ctx, args):
    c = ctx.client
    if args.sub == "create":
        name = args.nname or args.positional_name
        if not name:
            raise CLIError("network name cannot be empty")
        ipam = None
        if args.subnet or args.gateway or args.ip_range or args.ipam_opt:
            configs = [{"Subnet": s} for s in args.subnet]

            def family(v6):  # the config of that IP family (made if missing)
                for cf in configs:
                    if (":" in cf.get("Subnet", "")) == v6:
                        return cf
                configs.append({})
                return configs[-1]
            for gw in args.gateway:
                family(":" in gw)["Gateway"] = gw
            if args.ip_range:
                family(False)["IPRange"] = args.ip_range
            ipam = {"Driver": "default", "Config": configs,
                    "Options": key_value_list(args.ipam_opt, "ipam-opt")}
        result = c.create_network(name, args.driver, key_value_list(args.opts, "option"), ipam,
                                  key_value_list(args.label, "label"), args.internal, enable_ipv6=args.ipv6)
        print(result.get("Id", ""))
    elif args.sub in ("ls", "list"):
        nets = c.networks(filters_from_opts(args.filter)) or []
        if args.quiet:
            for n in nets:
                print(n["Id"][:12])
        else:
            print_table([["NETWORK ID", "NAME", "DRIVER", "SCOPE"]] +
                        [[n["Id"][:10], n["Name"], n.get("Driver", ""), n.get("Scope", "")] for n in nets])
    elif args.sub == "inspect":
        from pouch.cli.inspect import inspect_objects, print_objects
        objs, errors = inspect_objects(c, args.names, "network")
        print_objects(objs, args.format)
        if errors:
            raise CLIError("; ".join(errors))
    elif args.sub in ("rm", "remove"):
        for name in args.names:
            c.remove_network(name)
            print(name)
    elif args.sub == "prune":
        for name in (c.prune_networks(filters_from_opts(args.filter)) or {}).get("NetworksDeleted") or []:
            print(name)
    elif args.sub == "connect":
        c.connect_container_to_network(args.container, args.network, args.alias or None, args.ip)
    else:
        c.disconnect_container_from_network(args.container, args.network, args.force)
    return 0
