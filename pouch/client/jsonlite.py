"""JSON for the SDK without importing the `json` package: `loads`, `dumps`, `raw_decode`.

`import json` costs ~7 ms of the CLI's start (json.decoder and json.encoder compile
regular expressions, so `re`, `enum` and `functools` come with it). The work itself is done
by CPython's C accelerator `_json`, the very scanner and encoder `json` uses, so results are
identical: `loads` is `json.loads(s)` and `dumps` is `json.dumps(obj)` with default options.
Anything unusual (a BOM, UTF-16/32 bytes, malformed input, an object that cannot be encoded)
falls back to the real `json` module, so even the exceptions are the same.
"""
try:
    import _json
except ImportError:  # an interpreter without the accelerator: plain json
    _json = None

_WS = " \t\n\r"


class _DecodeContext:
    """The attributes _json.make_scanner reads from a json.JSONDecoder (its defaults)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__
    memo = {}


_scan_once = _json.make_scanner(_DecodeContext()) if _json is not None else None


def _fast_text(s):
    """s as text when the fast path applies, else None (let json handle it)."""
    if isinstance(s, str):
        return None if s.startswith("\ufeff") else s
    if isinstance(s, (bytes, bytearray)):
        if s.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")) or (len(s) >= 2 and not (s[0] and s[1])):
            return None
        try:
            return s.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return None
    return None


def loads(s):
    """json.loads(s) for str, bytes or bytearray."""
    text = _fast_text(s) if _scan_once is not None else None
    if text is not None:
        idx = len(text) - len(text.lstrip(_WS))
        try:
            obj, end = _scan_once(text, idx)
        except Exception:  # StopIteration / JSONDecodeError: let json word the error
            obj, end = None, -1
        if end >= 0 and not text[end:].strip(_WS):
            return obj
    import json
    return json.loads(s)


def raw_decode(text, idx=0):
    """json.JSONDecoder().raw_decode(text, idx): (value, index after it)."""
    if _scan_once is not None:
        try:
            return _scan_once(text, idx)
        except Exception:
            pass
    import json
    return json.JSONDecoder().raw_decode(text, idx)


def _unserializable(obj):
    raise TypeError("Object of type %s is not JSON serializable" % obj.__class__.__name__)


def dumps(obj):
    """json.dumps(obj) (ensure_ascii, ', ' and ': ' separators, no sorting)."""
    if _json is not None:
        try:
            if isinstance(obj, str):
                return _json.encode_basestring_ascii(obj)
            encode = _json.make_encoder({}, _unserializable, _json.encode_basestring_ascii, None,
                                        ": ", ", ", False, False, True)
            return "".join(encode(obj, 0))
        except Exception:  # let json raise (or produce) exactly what it would
            pass
    import json
    return json.dumps(obj)
