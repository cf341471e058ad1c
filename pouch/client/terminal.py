"""Interactive stream pumping for attach/exec: stdin -> socket, socket -> stdout/stderr.

Handles half-close on stdin EOF, client-side detach keys, raw terminal mode and SIGWINCH.
"""
import contextlib
import os
import signal
import threading
from _socket import SHUT_RDWR

from pouch.client import streams

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


def parse_detach_keys(spec):
    """'ctrl-p,ctrl-q' -> b'\\x10\\x11'; single characters are taken as they are."""
    out = bytearray()
    for key in (spec or DEFAULT_DETACH_KEYS).split(","):
        key = key.strip()
        if len(key) == 1:
            out.append(ord(key))
        elif key.lower().startswith("ctrl-") and len(key) == 6:
            ch = key[5].lower()
            if "a" <= ch <= "z":
                out.append(ord(ch) - ord("a") + 1)
            elif ch in "@[\\]^_":
                out.append(ord(ch.upper()) - 64)
            else:
                raise ValueError("invalid detach key %r" % key)
        else:
            raise ValueError("invalid detach key %r: use ctrl-<value> or a single character" % key)
    return bytes(out)


class EscapeFilter:
    """Watches stdin bytes for the detach sequence; holds back a partial match."""

    def __init__(self, keys):
        self.keys = keys
        self.pending = b""
        self.detached = False

    def feed(self, data):
        """Return the bytes to forward; sets .detached when the full sequence is seen."""
        if not self.keys:
            return data
        out = bytearray()
        for byte in data:
            candidate = self.pending + bytes([byte])
            if self.keys.startswith(candidate):
                self.pending = candidate
                if candidate == self.keys:
                    self.detached = True
                    self.pending = b""
                    return bytes(out)
            else:
                out += candidate
                self.pending = b""
        return bytes(out)


def _write(target, data):
    if isinstance(target, int):
        os.write(target, data)
        return
    buf = getattr(target, "buffer", target)
    buf.write(data)
    buf.flush()


def pump(hsock, stdin=None, stdout=None, stderr=None, tty=False, detach_keys=None, on_exit_code=None):
    """Copy stdin to the hijacked socket and its output to stdout/stderr until it ends.

    stdin is a file descriptor (int) or a binary file object, or None; stdout/stderr are
    fds or file objects. Returns True when the user detached, False when the stream ended.
    An exit code trailer (streams.SYSTEM) goes to ``on_exit_code(code)``.
    """
    escape = EscapeFilter(parse_detach_keys(detach_keys) if detach_keys != "" else b"")
    done = threading.Event()

    def read_input():
        try:
            while not done.is_set():
                if isinstance(stdin, int):
                    data = os.read(stdin, 4096)
                else:
                    data = (getattr(stdin, "read1", None) or stdin.read)(4096)
                if not data:
                    break
                data = escape.feed(data)
                if data:
                    hsock.sendall(data)
                if escape.detached:
                    # The daemon also watches for the keys: send them so it detaches
                    # without taking this for stdin EOF (which would close the
                    # container's stdin), then give it a moment to hang up.
                    done.set()
                    try:
                        hsock.sendall(escape.keys)
                    except OSError:
                        pass
                    timer = threading.Timer(2.0, _hang_up, (hsock,))
                    timer.daemon = True
                    timer.start()
                    return
        except OSError:
            pass
        hsock.close_write()

    if stdin is not None:
        threading.Thread(target=read_input, daemon=True, name="pouch-stdin").start()
    try:
        for stream, data in streams.demux_output(hsock, tty):
            if stream == streams.SYSTEM:
                code = streams.exit_code_of(data)
                if code is not None and on_exit_code is not None:
                    on_exit_code(code)
                continue
            target = stderr if stream == streams.STDERR else stdout
            if target is not None:
                _write(target, data)
    except OSError:
        pass
    done.set()
    return escape.detached


def _hang_up(hsock):
    try:
        hsock.sock.shutdown(SHUT_RDWR)
    except OSError:
        pass


@contextlib.contextmanager
def raw_terminal(fd):
    """Put the terminal on fd in raw mode for the duration (no-op if fd is not a tty)."""
    if not os.isatty(fd):
        yield
        return
    import termios
    import tty
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@contextlib.contextmanager
def resize_on_winch(fd, resize):
    """Call resize(height, width) now and on every SIGWINCH while inside the block."""
    if not os.isatty(fd):
        yield
        return

    def do_resize(*_):
        try:
            size = os.get_terminal_size(fd)
            resize(size.lines, size.columns)
        except Exception:  # resizing is best effort; the stream must go on
            pass

    do_resize()
    previous = signal.signal(signal.SIGWINCH, do_resize)
    try:
        yield
    finally:
        signal.signal(signal.SIGWINCH, previous)
