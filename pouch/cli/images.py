"""Commands: images, rmi, tag, pull, push, search, load, save, import, history, image <sub>."""
import sys

from pouch.cli.common import CLIError, filters_from_opts, print_format_rows, print_table, short_id
from pouch.cli.units import human_duration, human_size

IMAGE_SUBCOMMANDS = ("inspect", "ls", "rm", "tag", "pull", "push", "load", "save", "import", "history", "prune")


def setup(name, parser):
    if name == "image":
        sub = parser.add_subparsers(dest="sub", metavar="COMMAND")
        sub.required = True
        handlers = {}
        for s in IMAGE_SUBCOMMANDS:
            handlers[s] = _configure(s, sub.add_parser(s))
        return lambda ctx, args: handlers[args.sub](ctx, args)
    return _configure(name, parser)


def _configure(name, p):
    a = p.add_argument
    if name in ("images", "ls"):
        a("-q", "--quiet", action="store_true", help="Only show image numeric ID")
        a("--digest", "--digests", dest="digests", action="store_true", help="Show images with digest")
        a("--no-trunc", action="store_true", help="Do not truncate output")
        a("-a", "--all", action="store_true")
        a("-f", "--filter", action="append", default=[])
        a("--format")
        return run_images
    if name in ("rmi", "rm"):
        a("-f", "--force", action="store_true", help="if image is being used, remove image and all associated resources")
        a("images", nargs="+", metavar="IMAGE")
        return run_rmi
    if name == "tag":
        a("-f", "--force", action="store_true", help="Move the name even if it names another image")
        a("source")
        a("target")
        return run_tag
    if name in ("pull", "push"):
        if name == "pull":
            a("--platform", help="Set platform if server is multi-platform capable (os[/arch[/variant]])")
        a("image")
        return run_pull if name == "pull" else run_push
    if name == "search":
        a("--limit", type=int, help="Max number of search results")
        a("--no-trunc", action="store_true", help="Do not truncate output")
        a("term")
        return run_search
    if name == "commit":
        a("-a", "--author")
        a("-m", "--message")
        a("-c", "--change", action="append", default=[])
        a("-p", "--pause", action="store_true", default=True,
          help="Pause container during commit (default true; --pause=false to not)")
        a("container")
        a("repository", nargs="?")
        return run_commit
    if name == "prune":
        a("-a", "--all", action="store_true", help="Remove all unused images, not just dangling ones")
        a("-f", "--force", action="store_true", help="Do not prompt for confirmation")
        return run_prune
    if name == "load":
        a("-i", "--input", help="Read from tar archive file, instead of STDIN")
        a("-q", "--quiet", action="store_true")
        a("name", nargs="?", help="(Pouch) name for the loaded image")
        return run_load
    if name == "save":
        a("-o", "--output", help="Save to a tar archive file, instead of STDOUT")
        a("images", nargs="+", metavar="IMAGE")
        return run_save
    if name == "import":
        a("-c", "--change", action="append", default=[])
        a("-m", "--message")
        a("source", help="tar file, URL or - for STDIN")
        a("repository", nargs="?")
        return run_import
    if name == "history":
        a("--no-trunc", action="store_true")
        a("-q", "--quiet", action="store_true")
        a("image")
        return run_history
    a("-f", "--format")
    a("names", nargs="+", metavar="IMAGE")
    return run_image_inspect


def _split_ref(ref):
    name, tag = ref, None
    if "@" not in ref:
        slash = ref.rfind("/")
        colon = ref.rfind(":")
        if colon > slash:
            name, tag = ref[:colon], ref[colon + 1:]
    return name, tag


def run_images(ctx, args):
    images = ctx.client.images(all=args.all, filters=filters_from_opts(args.filter), digests=args.digests)
    rows = []
    for img in images:
        iid = img.get("Id", "")
        shown = iid if args.no_trunc else short_id(iid, 12)
        refs = img.get("RepoTags") or ["<none>:<none>"]
        digests = img.get("RepoDigests") or []
        for ref in refs:
            repo, tag = _split_ref(ref)
            rows.append({"ID": shown, "Name": ref, "Repository": repo, "Tag": tag or "<none>",
                         "Digest": digests[0].split("@", 1)[-1] if digests else "<none>",
                         "Size": human_size(img.get("Size")), "CreatedSince": human_duration(
                             __import__("time").time() - (img.get("Created") or 0)) + " ago"})
    if args.quiet:
        seen = []
        for r in rows:
            if r["ID"] not in seen:
                seen.append(r["ID"])
        print("\n".join(seen)) if seen else None
        return 0
    if args.format:
        print_format_rows(args.format, rows)
        return 0
    if args.digests:
        table = [["IMAGE ID", "IMAGE NAME", "DIGEST", "SIZE"]]
        table += [[r["ID"], r["Name"], r["Digest"], r["Size"]] for r in rows]
    else:
        table = [["IMAGE ID", "IMAGE NAME", "SIZE"]] + [[r["ID"], r["Name"], r["Size"]] for r in rows]
    print_table(table)
    return 0


def run_rmi(ctx, args):
    from pouch.client.errors import PouchClientError
    failed = []
    for image in args.images:
        try:
            ctx.client.remove_image(image, force=args.force)
            print(image)
        except PouchClientError as exc:
            failed.append("failed to remove image %s: %s" % (image, exc))
    if failed:
        raise CLIError("; ".join(failed))
    return 0


def run_tag(ctx, args):
    repo, tag = _split_ref(args.target)
    ctx.client.tag(args.source, repo, tag, force=args.force)
    return 0


def _show_progress(messages, out=None, final=None):
    """Render Docker JSON progress messages: one live line per layer on a terminal, else plain
    lines (byte-count updates skipped).  ``final(msg)`` recognises the message that ends a
    complete stream; a stream that stops before it (pouchd went away) is an error."""
    out = out or sys.stdout
    tty = out.isatty()
    rows = {}       # layer id -> line number (counted from the top of what we printed)
    count = 0
    last = {}
    complete = final is None
    for msg in _checked(messages, final):
        if msg is None:
            complete = True
            continue
        if msg.get("error") or msg.get("errorDetail"):
            raise CLIError(msg.get("error") or (msg.get("errorDetail") or {}).get("message"))
        status = msg.get("status") or msg.get("stream")
        if not status:
            continue
        lid = msg.get("id")
        if not lid:
            out.write(status.rstrip() + "\n")
            count += 1
            out.flush()
            continue
        detail = msg.get("progressDetail") or {}
        if not tty:
            if detail.get("total") or last.get(lid) == status:
                continue
            last[lid] = status
            out.write("%s: %s\n" % (lid, status))
            out.flush()
            continue
        text = ("%s: %s %s" % (lid, status, msg.get("progress") or "")).rstrip()
        if lid not in rows:
            rows[lid] = count
            count += 1
            out.write(text + "\n")
        else:
            up = count - rows[lid]
            out.write("\x1b[%dA\r\x1b[2K%s\r\x1b[%dB" % (up, text, up))
        out.flush()
    if not complete:
        raise CLIError("the operation did not complete: the connection to pouchd ended early")


def _checked(messages, final):
    """Yield messages, and None right after the one ``final`` accepts."""
    for msg in messages:
        yield msg
        if final is not None and final(msg):
            yield None


def run_pull(ctx, args):
    _show_progress(ctx.client.pull(args.image, platform=args.platform),
                   final=lambda m: (m.get("status") or "").startswith("Status: "))
    return 0


def run_push(ctx, args):
    repo, tag = _split_ref(args.image)
    _show_progress(ctx.client.push(repo, tag), final=lambda m: "aux" in m)
    return 0


def run_search(ctx, args):
    results = ctx.client.search(args.term, limit=args.limit)
    rows = [["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED"]]
    for r in results:
        desc = (r.get("description") or "").replace("\n", " ")
        if not args.no_trunc and len(desc) > 45:
            desc = desc[:44] + "…"
        rows.append([r.get("name", ""), desc, str(r.get("star_count", 0)),
                     "[OK]" if r.get("is_official") else "", "[OK]" if r.get("is_automated") else ""])
    print_table(rows)
    return 0


def run_commit(ctx, args):
    repo, tag = _split_ref(args.repository) if args.repository else (None, None)
    res = ctx.client.commit(args.container, repo, tag, message=args.message, author=args.author,
                            pause=args.pause, changes=args.change or None)
    print(res.get("Id", ""))
    return 0


def run_prune(ctx, args):
    if not args.force and sys.stdin.isatty():
        what = "all images without at least one container associated to them" if args.all \
            else "all dangling images"
        sys.stdout.write("WARNING! This will remove %s.\nAre you sure you want to continue? [y/N] " % what)
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    res = ctx.client.prune_images(filters={"dangling": ["false"]} if args.all else None) or {}
    deleted = res.get("ImagesDeleted") or []
    if deleted:
        print("Deleted Images:")
        for d in deleted:
            for k in ("Untagged", "Deleted"):
                if d.get(k):
                    print("%s: %s" % (k.lower(), d[k]))
        print()
    print("Total reclaimed space: %s" % human_size(res.get("SpaceReclaimed") or 0))
    return 0


def run_load(ctx, args):
    src = open(args.input, "rb") if args.input else sys.stdin.buffer
    try:
        _show_progress(ctx.client.load(src, quiet=args.quiet, name=args.name))
    finally:
        if args.input:
            src.close()
    return 0


def run_save(ctx, args):
    if not args.output and sys.stdout.isatty():
        raise CLIError("refusing to write the archive to a terminal; use -o or redirect")
    resp = ctx.client.save(args.images)
    out = open(args.output, "wb") if args.output else sys.stdout.buffer
    try:
        while True:
            chunk = resp.read(65536)
            if not chunk:
                break
            out.write(chunk)
    finally:
        if args.output:
            out.close()
        else:
            out.flush()
    return 0


def run_import(ctx, args):
    repo, tag = _split_ref(args.repository) if args.repository else (None, None)
    if args.source == "-":
        data, src = sys.stdin.buffer, None
    elif "://" in args.source:
        data, src = None, args.source
    else:
        data, src = open(args.source, "rb"), None
    msgs = ctx.client.import_image(data=data, src=src, repository=repo, tag=tag,
                                   changes=args.change or None, message=args.message)
    for msg in msgs:
        if msg.get("error"):
            raise CLIError(msg["error"])
        if msg.get("status"):
            print(msg["status"].strip())
    return 0


def run_history(ctx, args):
    import time
    rows = [["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]]
    for h in ctx.client.history(args.image):
        iid = h.get("Id", "<missing>")
        if args.quiet:
            print(iid if args.no_trunc else short_id(iid, 12))
            continue
        by = h.get("CreatedBy", "")
        rows.append([iid if args.no_trunc or iid == "<missing>" else short_id(iid, 12),
                     human_duration(time.time() - (h.get("Created") or 0)) + " ago",
                     by if args.no_trunc else by[:45], human_size(h.get("Size")), h.get("Comment", "")])
    if not args.quiet:
        print_table(rows)
    return 0


def run_image_inspect(ctx, args):
    from pouch.cli.inspect import inspect_objects, print_objects
    objs, errors = inspect_objects(ctx.client, args.names, "image")
    print_objects(objs, args.format)
    if errors:
        raise CLIError("; ".join(errors))
    return 0
