"""Shared CLI helpers: the client factory, typed CLI errors, table output, small parsers."""
import sys


class CLIError(Exception):
    """A user-facing failure: printed as one `Error: ...` line, exit status `code`."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


class ExitStatus(Exception):
    """Leave the CLI with this status and no message (container exit codes)."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


def getenv(name):
    """os.environ.get(name) without importing os (~5M instructions, a sixth of `pouch version`):
    the builtin posix module's bytes environ, decoded as os.environ decodes it."""
    import posix
    value = posix.environ.get(name.encode())
    return value.decode(sys.getfilesystemencoding(), "surrogateescape") if value is not None else None


def resolve_host(flag_value):
    """-H wins, then POUCH_HOST, then DOCKER_HOST, then the default unix socket."""
    return flag_value or getenv("POUCH_HOST") or getenv("DOCKER_HOST") or None


class Context:
    """What every command gets: global options and a lazily built APIClient."""

    def __init__(self, host=None, debug=False, tls=None):
        self.host = resolve_host(host)
        self.debug = debug
        self.tls = tls or {}  # from the --tls* flags (see main.split_global)
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from pouch.client.api import APIClient
            tls = None
            if self.tls:
                from pouch.client.transport import TLSConfig
                tls = TLSConfig(self.tls.get("tlscacert"), self.tls.get("tlscert"), self.tls.get("tlskey"),
                                verify=self.tls.get("verify", False) or bool(self.tls.get("tlscacert")))
            self._client = APIClient(self.host, tls=tls)
        return self._client


def need_terminal(tty, interactive):
    """-it needs stdin to be a terminal: refuse at once otherwise (as Pouch does), before anything is made."""
    if tty and interactive and not sys.stdin.isatty():
        raise CLIError("the input device is not a TTY")


def print_table(rows, out=None, pad=3):
    """Print rows as left-aligned columns separated by at least `pad` spaces."""
    out = out or sys.stdout
    if not rows:
        return
    widths = [max(len(str(r[i])) for r in rows if i < len(r)) for i in range(max(map(len, rows)))]
    for row in rows:
        cells = [str(c).ljust(widths[i]) if i < len(row) - 1 else str(c) for i, c in enumerate(row)]
        out.write((" " * pad).join(cells).rstrip() + "\n")


def print_format_rows(fmt, items, out=None):
    """--format support: 'table ...' prints aligned headers + rows, else one line per item."""
    from pouch.cli.formatter import Template, table_headers
    out = out or sys.stdout
    if fmt.startswith("table"):
        body = fmt[len("table"):].strip() or "{{.ID}}"
        body = body.replace("\\t", "\t")
        tpl = Template(body)
        rows = [table_headers(body).split("\t")] + [tpl.render(i).split("\t") for i in items]
        print_table(rows, out)
        return
    tpl = Template(fmt.replace("\\t", "\t").replace("\\n", "\n"))
    for item in items:
        out.write(tpl.render(item) + "\n")


def key_value_list(values, what="value"):
    """['a=b', 'c'] -> {'a': 'b', 'c': ''}."""
    out = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not key:
            raise CLIError("invalid %s %r: want KEY=VALUE" % (what, item))
        out[key] = value
    return out


def filters_from_opts(values):
    """['status=running', 'label=a=b'] -> {'status': ['running'], 'label': ['a=b']}."""
    out = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CLIError("Bad format of filter, expected name=value: %s" % item)
        out.setdefault(key.strip().lower(), []).append(value)
    return out


def short_id(full, n=6):
    """Pouch shows 6 characters of an id (after any 'sha256:')."""
    full = full or ""
    if full.startswith("sha256:"):
        full = full[len("sha256:"):]
    return full[:n]
