"""Command-line argument parsing for `pouch <command>`: the subset of argparse the CLI uses.

Why not argparse: importing it pulls in `re` (and through it `enum`, `functools`, the
regex compiler) and `gettext`, and every message it builds goes through gettext. Measured
on this machine (python3.11, median of 25 runs): `python3 -SE -c "import argparse"` takes
20.5 ms against 9.9 ms for `-c pass`, i.e. ~10 ms (~7.5 ms by `-X importtime`) of what was a
~30 ms `pouch ps -a`. With this module (and the SDK's jsonlite / `_socket`) `pouch ps -a`
with 100 containers runs in ~19 ms. This module imports nothing.

Supported (what pouch/cli/*.py declares): positionals with nargs None / '?' / '*' / '+' /
REMAINDER (REMAINDER takes every word after the positionals before it, flags included),
options with short and long names, `--opt=value`, `--opt value`, `-ovalue`, `-o=value`,
combined short flags (`-itd`, `-itv /a:/b`), actions store / store_true / append, type,
default, dest, choices, required, metavar, help, the `--` terminator, subcommands
(`add_subparsers` / `add_parser` with aliases) and `-h/--help`.

Errors raise `ArgError` (one line of text; the CLI prints `Error: ...` and exits 2, as it
did with argparse); `-h/--help` raises `HelpRequested` carrying the help text.
"""

REMAINDER = "..."


class ArgError(Exception):
    """The command line does not match the command's arguments."""

    code = 2
    prog = None  # the (sub)command whose arguments did not match


class HelpRequested(Exception):
    """-h/--help was given; `text` is the help to print (exit status 0)."""

    def __init__(self, text):
        super().__init__(text)
        self.text = text


class Namespace:
    """Parsed values as attributes (like argparse.Namespace)."""

    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)

    def __contains__(self, key):
        return key in self.__dict__

    def __eq__(self, other):
        return isinstance(other, Namespace) and vars(self) == vars(other)

    def __repr__(self):
        return "Namespace(%s)" % ", ".join("%s=%r" % kv for kv in sorted(self.__dict__.items()))


_UNSET = object()
_TYPE_NAMES = {int: "int", float: "float", str: "string"}
_BOOL_WORDS = {"true": True, "1": True, "t": True, "false": False, "0": False, "f": False}


class Argument:
    """One declared option or positional."""

    def __init__(self, names, action="store", nargs=None, default=_UNSET, type=None, choices=None,
                 required=False, metavar=None, dest=None, help=None):
        if action not in ("store", "store_true", "append"):
            raise ValueError("unsupported action %r" % action)
        self.names = names
        self.positional = not names[0].startswith("-")
        if nargs not in ((None, "?", "*", "+", REMAINDER) if self.positional else (None,)):
            raise ValueError("unsupported nargs %r for %s" % (nargs, names[0]))
        self.action = action
        self.nargs = nargs
        self.type = type
        self.choices = choices
        self.required = required
        self.metavar = metavar
        self.help = help or ""
        if self.positional:
            self.dest = dest or names[0]
        else:
            longs = [n for n in names if n.startswith("--")]
            self.dest = dest or (longs[0] if longs else names[0]).lstrip("-").replace("-", "_")
        if default is _UNSET:
            default = False if action == "store_true" else None
            if self.positional and nargs in ("*", REMAINDER):
                default = []
        self.default = default

    @property
    def takes_value(self):
        return self.action != "store_true"

    def display(self):
        """'-a, --all' for options; 'NAME' for positionals."""
        if self.positional:
            return self.metavar or self.dest.upper()
        return ", ".join(self.names)

    def value_name(self):
        if self.choices:
            return "{%s}" % ",".join(map(str, self.choices))
        return self.metavar or _TYPE_NAMES.get(self.type, "string")

    def convert(self, text):
        """Apply type and choices to one word; raise ArgError naming the flag."""
        value = text
        if self.type is not None:
            try:
                value = self.type(text)
            except (TypeError, ValueError):
                want = {int: "an integer", float: "a number"}.get(self.type, "a valid value")
                raise ArgError('invalid argument "%s" for "%s": want %s' % (text, self.display(), want)) from None
        if self.choices is not None and value not in self.choices:
            raise ArgError('invalid argument "%s" for "%s": choose from %s'
                           % (text, self.display(), ", ".join(map(str, self.choices))))
        return value


class _SubParsers:
    """What add_subparsers returns: add_parser(name, aliases=..., help=...)."""

    def __init__(self, parent, dest, metavar):
        self.parent = parent
        self.dest = dest
        self.metavar = metavar or "COMMAND"
        self.required = False
        self.parsers = {}
        self.listing = []

    def add_parser(self, name, aliases=(), help=None, description=None):
        parser = ArgumentParser(prog="%s %s" % (self.parent.prog, name), description=description or help)
        for n in (name,) + tuple(aliases):
            self.parsers[n] = parser
        self.listing.append((", ".join((name,) + tuple(aliases)), help or ""))
        return parser


class ArgumentParser:
    """Declare arguments with add_argument(), then parse_args(argv) -> Namespace."""

    def __init__(self, prog="pouch", description=None, **_ignored):
        self.prog = prog
        self.description = description
        self.options = []
        self.positionals = []
        self.by_name = {}
        self.subparsers = None

    # -- declaration -------------------------------------------------------
    def add_argument(self, *names, **kw):
        if not names:
            raise ValueError("add_argument needs a name")
        arg = Argument(names, **kw)
        if arg.positional:
            if len(names) != 1:
                raise ValueError("a positional has exactly one name: %r" % (names,))
            if self.positionals and self.positionals[-1].nargs == REMAINDER:
                raise ValueError("no positional may follow a REMAINDER one")
            self.positionals.append(arg)
        else:
            for name in names:
                if name in self.by_name or name in ("-h", "--help"):
                    raise ValueError("conflicting option string: %s" % name)
                self.by_name[name] = arg
            self.options.append(arg)
        return arg

    def add_subparsers(self, dest=None, metavar=None, **_ignored):
        if self.subparsers is not None:
            raise ValueError("only one set of subcommands per parser")
        self.subparsers = _SubParsers(self, dest, metavar)
        return self.subparsers

    # -- help --------------------------------------------------------------
    def format_usage(self):
        words = ["Usage:", self.prog]
        if self.options:
            words.append("[OPTIONS]")
        if self.subparsers is not None:
            words.append(self.subparsers.metavar)
            words.append("[ARG...]")
        for arg in self.positionals:
            name = arg.display()
            words.append({None: name, "?": "[%s]" % name, "*": "[%s...]" % name, "+": "%s [%s...]" % (name, name),
                          REMAINDER: "[%s] [ARG...]" % name}[arg.nargs])
        return " ".join(words)

    def format_help(self):
        out = [self.format_usage(), ""]
        if self.description:
            out += [self.description, ""]
        if self.subparsers is not None:
            out.append("Commands:")
            width = max(len(n) for n, _ in self.subparsers.listing) + 2
            out += ["  %s%s" % (n.ljust(width), h) for n, h in self.subparsers.listing]
            out.append("")
        rows = []
        for arg in self.options:
            shorts = [n for n in arg.names if not n.startswith("--")]
            longs = [n for n in arg.names if n.startswith("--")]
            left = ", ".join(shorts + longs) if shorts else "    " + ", ".join(longs)
            if arg.takes_value:
                left += " " + arg.value_name()
            text = arg.help
            if arg.default not in (None, False, [], "") and arg.action != "append":
                text = ("%s (default %s)" % (text, arg.default)).strip()
            if arg.action == "append" and "repeatable" not in text:
                text = (text + " (repeatable)").strip()
            rows.append((left, text))
        rows.append(("-h, --help", "Print usage"))
        width = min(max(len(left) for left, _ in rows) + 3, 40)
        out.append("Options:")
        for left, text in rows:
            if len(left) + 2 >= width:
                out.append("  " + left)
                if text:
                    out.append(" " * (width + 2) + text)
            else:
                out.append("  " + left.ljust(width) + text)
        return "\n".join(line.rstrip() for line in out) + "\n"

    def error(self, message, prog=None):
        """Raise the one-line ArgError the CLI prints, pointing at the right --help."""
        raise ArgError("%s (see '%s --help')" % (message, prog or self.prog))

    # -- parsing -----------------------------------------------------------
    def parse_args(self, argv=None, namespace=None):
        """Parse argv (a list of words) into a Namespace; raise ArgError or HelpRequested."""
        if argv is None:
            import sys
            argv = sys.argv[1:]
        ns = namespace if namespace is not None else Namespace()
        try:
            self._parse_into(list(argv), ns)
        except ArgError as exc:
            self.error(str(exc), exc.prog)
        return ns

    def _defaults(self, ns):
        for arg in self.options + self.positionals:
            if not hasattr(ns, arg.dest):
                default = arg.default
                setattr(ns, arg.dest, list(default) if isinstance(default, list) else default)
        if self.subparsers is not None and self.subparsers.dest and not hasattr(ns, self.subparsers.dest):
            setattr(ns, self.subparsers.dest, None)

    def _apply(self, arg, ns, value, seen):
        if arg.action == "store_true":
            setattr(ns, arg.dest, True if value is None else value)
        elif arg.action == "append":
            current = getattr(ns, arg.dest, None)
            if arg not in seen or current is None:
                current = list(current or [])
            current.append(arg.convert(value))
            setattr(ns, arg.dest, current)
        else:
            setattr(ns, arg.dest, arg.convert(value))
        seen.add(arg)

    def _bool_value(self, arg, text):
        value = _BOOL_WORDS.get(text.lower())
        if value is None:
            raise ArgError('invalid argument "%s" for "%s": want true or false' % (text, arg.display()))
        return value

    def _remainder_after(self):
        """How many positional words come before a REMAINDER positional (None: no REMAINDER)."""
        if not self.positionals or self.positionals[-1].nargs != REMAINDER:
            return None
        before = self.positionals[:-1]
        if any(a.nargs is not None for a in before):
            raise ValueError("REMAINDER may only follow single-word positionals")
        return len(before)

    def _parse_into(self, argv, ns):
        self._defaults(ns)
        seen = set()
        words = []
        remainder = None
        remainder_at = self._remainder_after()
        only_positional = False
        i = 0
        while i < len(argv):
            word = argv[i]
            i += 1
            if remainder is not None:
                remainder.append(word)
                continue
            if only_positional or word == "-" or not word.startswith("-") or \
                    (_is_number(word) and word not in self.by_name):
                if self.subparsers is not None:
                    self._run_subparser(word, argv[i:], ns)
                    break
                if remainder_at == 0:
                    remainder = [word]
                    continue
                words.append(word)
                if remainder_at is not None and len(words) == remainder_at:
                    remainder = []
                    if not only_positional and argv[i:i + 1] == ["--"]:
                        i += 1  # `run IMAGE -- CMD`: the first `--` ends the flags (argparse drops it)
                continue
            if word == "--":
                only_positional = True
                continue
            if word.startswith("--"):
                name, eq, value = word.partition("=")
                if name == "--help":
                    raise HelpRequested(self.format_help())
                arg = self.by_name.get(name)
                if arg is None:
                    raise ArgError("unknown flag: %s" % name)
                if not arg.takes_value:
                    self._apply(arg, ns, self._bool_value(arg, value) if eq else None, seen)
                    continue
                if not eq:
                    if i >= len(argv):
                        raise ArgError("flag needs an argument: %s" % name)
                    value = argv[i]
                    i += 1
                self._apply(arg, ns, value, seen)
                continue
            # one or more short flags: -a, -it, -ovalue, -o=value, -itd
            letters = word[1:]
            j = 0
            while j < len(letters):
                flag = "-" + letters[j]
                j += 1
                if flag == "-h":
                    raise HelpRequested(self.format_help())
                arg = self.by_name.get(flag)
                if arg is None:
                    raise ArgError("unknown shorthand flag: '%s' in %s" % (letters[j - 1], word))
                if not arg.takes_value:
                    if letters[j:j + 1] == "=":
                        self._apply(arg, ns, self._bool_value(arg, letters[j + 1:]), seen)
                        break
                    self._apply(arg, ns, None, seen)
                    continue
                value = letters[j:]
                if value.startswith("="):
                    value = value[1:]
                elif not value:
                    if i >= len(argv):
                        raise ArgError("flag needs an argument: '%s' in %s" % (letters[j - 1], word))
                    value = argv[i]
                    i += 1
                self._apply(arg, ns, value, seen)
                break
        else:
            if self.subparsers is not None and self.subparsers.required:
                raise ArgError("requires a %s: one of %s" % (
                    self.subparsers.metavar, ", ".join(n for n, _ in self.subparsers.listing)))
        for arg in self.options:
            if arg.required and arg not in seen:
                raise ArgError("required flag not set: %s" % arg.display())
        self._assign_positionals(words, remainder, ns)

    def _run_subparser(self, name, rest, ns):
        parser = self.subparsers.parsers.get(name)
        if parser is None:
            raise ArgError('unknown %s "%s": choose from %s' % (
                self.subparsers.metavar.lower(), name, ", ".join(n for n, _ in self.subparsers.listing)))
        if self.subparsers.dest:
            setattr(ns, self.subparsers.dest, name)
        try:
            parser._parse_into(rest, ns)
        except ArgError as exc:
            exc.prog = exc.prog or parser.prog
            raise

    def _assign_positionals(self, words, remainder, ns):
        specs = self.positionals
        if specs and specs[-1].nargs == REMAINDER:
            setattr(ns, specs[-1].dest, remainder if remainder is not None else [])
            specs = specs[:-1]
        minimum = [0 if a.nargs in ("?", "*") else 1 for a in specs]
        pos = 0
        missing = []
        for k, arg in enumerate(specs):
            available = len(words) - pos - sum(minimum[k + 1:])
            if arg.nargs is None:
                if available < 1:
                    missing.append(arg.display())
                    continue
                setattr(ns, arg.dest, arg.convert(words[pos]))
                pos += 1
            elif arg.nargs == "?":
                if available >= 1:
                    setattr(ns, arg.dest, arg.convert(words[pos]))
                    pos += 1
            else:
                take = max(available, 0)
                if arg.nargs == "+" and take < 1:
                    missing.append(arg.display())
                    continue
                setattr(ns, arg.dest, [arg.convert(w) for w in words[pos:pos + take]])
                pos += take
        if missing:
            raise ArgError("missing argument%s: %s" % ("s" if len(missing) > 1 else "", " ".join(missing)))
        if pos < len(words):
            extra = words[pos:]
            raise ArgError("unexpected argument%s: %s" % ("s" if len(extra) > 1 else "", " ".join(extra)))


def _is_number(word):
    """'-1', '-1.5': a negative number, taken as a value rather than a flag."""
    body = word[1:]
    return body.replace(".", "", 1).isdigit()
