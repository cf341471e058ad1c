"""Command: inspect (containers, images, volumes, networks; -f Go templates, --type)."""
import json

from pouch.cli.common import CLIError

TYPES = ("container", "image", "volume", "network")


def setup(name, parser):
    parser.add_argument("-f", "--format", help="Format the output using the given go template")
    parser.add_argument("-t", "--type", choices=TYPES, help="Specify type to inspect")
    parser.add_argument("-s", "--size", action="store_true", help="Display total file sizes")
    parser.add_argument("names", nargs="+", metavar="NAME")
    return run_inspect


def _lookup(client, kind, name):
    if kind == "container":
        return client.inspect_container(name)
    if kind == "image":
        return client.inspect_image(name)
    if kind == "volume":
        return client.inspect_volume(name)
    return client.inspect_network(name)


def inspect_objects(client, names, kind=None):
    """Inspect each name (trying container then image when no type); raise after collecting."""
    from pouch.client.errors import NotFound
    found, errors = [], []
    for name in names:
        kinds = [kind] if kind else ["container", "image"]
        for k in kinds:
            try:
                found.append(_lookup(client, k, name))
                break
            except NotFound as exc:
                last = exc
        else:
            # as Pouch prints it: the daemon's JSON error body after "Fetch object error: "
            errors.append("Fetch object error: " + json.dumps({"message": _message(last)}, separators=(",", ":")))
    return found, errors


def _message(exc):
    return getattr(exc, "explanation", None) or getattr(exc, "message", None) or str(exc)


def print_objects(objs, fmt):
    if fmt:
        from pouch.cli.formatter import Struct, Template, TemplateError
        try:  # both texts as Pouch prints them
            tpl = Template(fmt)
        except TemplateError as exc:
            raise CLIError("Parse template String error: %s" % exc)
        try:
            for obj in objs:
                print(tpl.render(Struct(obj) if isinstance(obj, dict) else obj))
        except TemplateError as exc:
            raise CLIError("Template parsing error: %s" % exc)
    else:
        print(json.dumps(objs, indent=4))


def run_inspect(ctx, args):
    objs, errors = inspect_objects(ctx.client, args.names, args.type)
    print_objects(objs, args.format)
    if errors:
        raise CLIError("; ".join(errors))
    return 0
