"""A small subset of Go text/template used by `inspect -f` and `ps/images --format`.

Supported: {{.A.B}}, {{.}}, {{json .X}}, {{index .X "k"}}, {{len .X}}, {{upper|lower|title .X}},
{{join .X ","}}, {{printf "%s" .X}}, pipelines (`.X | json`), {{range .X}}...{{end}},
{{if .X}}...{{else}}...{{end}}, and `{{- ... -}}` whitespace trimming. Values print the way Go does
(maps as map[k:v], lists as [a b], true/false, <nil>/<no value>).
"""
import json
import re

from pouch.cli.common import CLIError

_ACTION = re.compile(r"{{(-?)\s*(.*?)\s*(-?)}}", re.S)
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`|\||[^\s|]+')


class TemplateError(CLIError, ValueError):
    """The template could not be parsed or executed (a CLIError: one line, exit status 1)."""

    def __str__(self):
        return "template: " + self.args[0] if not self.args[0].startswith("template:") else self.args[0]


def go_str(value):
    """Render a value the way Go's fmt %v does for decoded JSON."""
    if value is None:
        return "<nil>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):
        return "map[" + " ".join("%s:%s" % (k, go_str(value[k])) for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    return str(value)


def _truthy(value):
    return value not in (None, False, 0, "", [], {})


class Struct(dict):
    """A dict that stands for a Go struct: a missing field is an error, not <no value> (as
    `pouch inspect -f '{{.Nope}}'` fails in Pouch)."""

    type_name = "struct"


def _field(obj, path):
    for name in [p for p in path.split(".") if p]:
        if isinstance(obj, dict):
            if name in obj:
                obj = obj[name]
                continue
            lower = {k.lower(): k for k in obj}
            if name.lower() in lower:
                obj = obj[lower[name.lower()]]
                continue
            if isinstance(obj, Struct):
                raise TemplateError('executing "" at <.%s>: can\'t evaluate field %s in type %s'
                                    % (path.lstrip("."), name, obj.type_name))
            return _NoValue
        return _NoValue
    return obj


class _NoValueType:
    def __str__(self):
        return "<no value>"


_NoValue = _NoValueType()


def _printf(fmt, *args):
    fmt = fmt.replace("%v", "%s").replace("%q", '"%s"').replace("%d", "%s")
    return fmt % tuple(go_str(a) for a in args)


FUNCS = {
    "json": lambda v: json.dumps(None if v is _NoValue else v, separators=(",", ":")),
    "index": lambda v, *keys: _index(v, keys),
    "len": lambda v: len(v) if v not in (None, _NoValue) else 0,
    "upper": lambda v: go_str(v).upper(),
    "lower": lambda v: go_str(v).lower(),
    "title": lambda v: go_str(v).title(),
    "join": lambda v, sep: sep.join(go_str(x) for x in (v or [])),
    "split": lambda v, sep: go_str(v).split(sep),
    "printf": _printf,
    "print": lambda *a: "".join(go_str(x) for x in a),
    "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "eq": lambda a, *b: any(a == x for x in b),
    "ne": lambda a, b: a != b,
    "not": lambda v: not _truthy(v),
    "and": lambda *a: next((x for x in a if not _truthy(x)), a[-1]),
    "or": lambda *a: next((x for x in a if _truthy(x)), a[-1]),
}


def _index(value, keys):
    for key in keys:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def _arg(token, dot):
    if token.startswith('"'):
        return json.loads(token)
    if token.startswith("`"):
        return token[1:-1]
    if token == ".":
        return dot
    if token.startswith("."):
        return _field(dot, token)
    if token in ("true", "false"):
        return token == "true"
    if token == "nil":
        return None
    if re.fullmatch(r"-?\d+", token):
        return int(token)
    raise TemplateError('function "%s" not defined' % token)


def _eval(expr, dot):
    """Evaluate a pipeline like `json .Config` or `.Names | join ","`."""
    value = _NoValue
    first = True
    for command in _split_pipe(_TOKEN.findall(expr)):
        if not command:
            raise TemplateError("missing command in %r" % expr)
        name, args = command[0], command[1:]
        extra = [] if first else [value]
        if name in FUNCS:
            value = FUNCS[name](*([_arg(a, dot) for a in args] + extra))
        elif len(command) == 1 and first:
            value = _arg(name, dot)
        else:
            raise TemplateError('can\'t evaluate %r' % expr)
        first = False
    return value


def _split_pipe(tokens):
    out, cur = [], []
    for tok in tokens:
        if tok == "|":
            out.append(cur)
            cur = []
        else:
            cur.append(tok)
    out.append(cur)
    return out


def _parse(text):
    """Parse into a tree of ("text", s) / ("expr", e) / ("range"|"if", e, body, else)."""
    pieces, pos = [], 0
    for m in _ACTION.finditer(text):
        lit = text[pos:m.start()]
        if m.group(1):
            lit = lit.rstrip()
        if pieces and pieces[-1][0] == "trim":
            pieces.pop()
            lit = lit.lstrip()
        pieces.append(("text", lit))
        pieces.append(("action", m.group(2)))
        if m.group(3):
            pieces.append(("trim", None))
        pos = m.end()
    tail = text[pos:]
    if "{{" in tail:
        raise TemplateError(":1: unclosed action")
    if pieces and pieces[-1][0] == "trim":
        pieces.pop()
        tail = tail.lstrip()
    pieces.append(("text", tail))

    root = []
    stack = [(root, None)]
    for kind, value in pieces:
        body = stack[-1][0]
        if kind == "text":
            if value:
                body.append(("text", value))
            continue
        word = value.split(None, 1)
        head = word[0] if word else ""
        if head in ("range", "if", "with"):
            node = [head, word[1] if len(word) > 1 else "", [], []]
            body.append(node)
            stack.append((node[2], node))
        elif head == "else":
            node = stack[-1][1]
            if node is None:
                raise TemplateError("unexpected {{else}}")
            stack[-1] = (node[3], node)
        elif head == "end":
            if len(stack) == 1:
                raise TemplateError("unexpected {{end}}")
            stack.pop()
        elif value.startswith("/*"):
            continue
        else:
            body.append(("expr", value))
    if len(stack) != 1:
        raise TemplateError("unexpected EOF: missing {{end}}")
    return root


def _run(nodes, dot, out):
    for node in nodes:
        kind = node[0]
        if kind == "text":
            out.append(node[1])
        elif kind == "expr":
            value = _eval(node[1], dot)
            out.append(value if isinstance(value, str) else go_str(value) if value is not _NoValue
                       else "<no value>")
        else:
            value = _eval(node[1], dot)
            if kind == "range":
                items = list(value.values()) if isinstance(value, dict) else value
                if _truthy(items) and value is not _NoValue:
                    for item in items:
                        _run(node[2], item, out)
                else:
                    _run(node[3], dot, out)
            elif _truthy(value) and value is not _NoValue:
                _run(node[2], value if kind == "with" else dot, out)
            else:
                _run(node[3], dot, out)


class Template:
    """A parsed template; `render(obj)` returns the formatted string."""

    def __init__(self, text):
        self.text = text
        self.nodes = _parse(text)

    def render(self, obj):
        out = []
        _run(self.nodes, obj, out)
        return "".join(out)


def render(text, obj):
    """Parse and render in one go."""
    return Template(text).render(obj)


def table_headers(text):
    """Headers for a `table` format: each {{.Field}} becomes FIELD (CamelCase split by space)."""
    def header(m):
        name = m.group(1).split(".")[-1]
        return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).upper()
    return re.sub(r"{{-?\s*\.([\w.]+)\s*-?}}", header, text)
