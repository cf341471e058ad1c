"""Command: updatedaemon (Pouch's): labels and image proxy of a running pouchd through
POST /daemon/update; with --offline (or no daemon answering) the settings are written to
pouchd's config file and apply at its next start."""
import json
import os

from pouch.cli.common import CLIError

# flag dest -> (config-file section path, key), as Pouch's config file nests them
OFFLINE_KEYS = {
    "image_proxy": ((), "image-proxy"),
    "home_dir": ((), "home-dir"),
    "snapshotter": ((), "snapshotter"),
    "exec_root_dir": (("network-config",), "exec-root-dir"),
    "bridge_name": (("network-config", "bridge-config"), "bridge-name"),
    "bip": (("network-config", "bridge-config"), "bip"),
}


def setup(name, parser):
    parser.add_argument("--config-file", default="/etc/pouch/config.json",
                        help="specified config file for updating daemon")
    parser.add_argument("--offline", action="store_true", help="just update daemon config file")
    parser.add_argument("--debug", action="store_true", help="update daemon debug mode (offline)")
    parser.add_argument("--image-proxy", help="update daemon image proxy")
    parser.add_argument("--label", action="append", help="update daemon labels (key=value)")
    parser.add_argument("--exec-root-dir", help="update exec root directory (offline)")
    parser.add_argument("--bridge-name", help="update daemon bridge device (offline)")
    parser.add_argument("--bip", help="update daemon bridge IP (offline)")
    parser.add_argument("--home-dir", help="update daemon home dir (offline)")
    parser.add_argument("--snapshotter", help="update daemon snapshotter (offline)")
    return run


def _labels(values):
    out = []
    for item in values or []:
        for label in item.split(","):
            k, sep, v = label.partition("=")
            if not sep or not k or not v:
                raise CLIError("daemon label %s must be in format of key=value" % label)
            out.append(label)
    return out


def _alive(ctx):
    try:
        return ctx.client.ping() == "OK"
    except Exception:
        return False


def run(ctx, args):
    labels = _labels(args.label)
    if not args.offline and _alive(ctx):
        offline_only = [k for k in OFFLINE_KEYS if k != "image_proxy" and getattr(args, k)]
        if offline_only or args.debug:
            raise CLIError("pouchd is running: only --label and --image-proxy update it online; "
                           "use --offline to change --%s in the config file" %
                           (offline_only[0] if offline_only else "debug").replace("_", "-"))
        body = {}
        if labels:
            body["Labels"] = labels
        if args.image_proxy:
            body["ImageProxy"] = args.image_proxy
        ctx.client.update_daemon(body)
        return 0
    _update_file(args, labels)
    return 0


def _update_file(args, labels):
    path = args.config_file
    try:
        with open(path) as f:
            text = f.read()
        data = json.loads(text) if text.strip() else {}
    except FileNotFoundError:
        data = {}
    except (OSError, ValueError) as e:
        raise CLIError("failed to read config file %s: %s" % (path, e))
    if not isinstance(data, dict):
        raise CLIError("config file %s: want a JSON object" % path)
    changed = False
    for dest, (sections, key) in OFFLINE_KEYS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        node = data
        for s in sections:
            node = node.setdefault(s, {})
        node[key] = value
        changed = True
    if args.debug:
        data["debug"] = True
        changed = True
    if labels:
        merged = list(data.get("label") or [])
        for label in labels:
            key = label.partition("=")[0]
            hit = [i for i, old in enumerate(merged) if old.partition("=")[0] == key]
            if hit:
                merged[hit[0]] = label
            else:
                merged.append(label)
        data["label"] = merged
        changed = True
    if not changed:
        raise CLIError("daemon update config cannot be empty")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=4)
        f.write("\n")
    os.replace(tmp, path)
