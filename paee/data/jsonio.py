"""JSON in and out for every file and request a user hands the package: one reader with limits, one writer
that never leaves half a file.

Reading (`loads_json`, `read_json`): whatever the text holds, the only exception is `PaeeDataError`, naming
the source and, where it can, the place: invalid JSON (line and column), nesting deeper than the parser's
recursion allows (a 10,000-level ``[[[...]]]``), an integer literal longer than Python converts (a
5,000-digit number), a payload over ``max_bytes``, and strings that are not Unicode text (a lone surrogate
escape such as ``"\\ud800"`` is valid JSON but cannot be tokenized or written as UTF-8): the error names the
document (the index in a top-level list) and the field.

Writing (`write_json_atomic`): the text goes to a temporary file beside the target, which is renamed over it
only once complete, so a crash (or an error found while serializing) leaves the previous file as it was.
"""

from __future__ import annotations

import codecs
import contextlib
import glob
import json
import os
import re
import shutil
import sys
import tempfile
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from paee.data.errors import PaeeDataError

__all__ = [
    "JsonListReader", "JsonListWriter", "find_surrogate", "loads_json", "read_json", "scratch_dir", "sweep_stale",
    "write_json_atomic",
    "write_text_atomic",
]

#: A UTF-16 surrogate escape (``\ud800``-``\udfff``); only texts with one are walked for lone surrogates
#: (a correct pair, an escaped emoji, decodes to one character and passes the walk).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _describe(path: list[Any]) -> str:
    """``document 3, field 'sents[0][2]'`` for a path into a top-level list; ``field 'a.b'`` otherwise."""
    head = ""
    if path and isinstance(path[0], int):
        head, path = f"document {path[0]}", path[1:]
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    if not field:
        return head or "the top level"
    return f"{head}, field {field!r}" if head else f"field {field!r}"


def find_surrogate(obj: Any) -> tuple[list[Any], str] | None:
    """The path to the first string (value or key) of ``obj`` that is not valid Unicode text (a lone surrogate),
    and that string; None when every string encodes as UTF-8. Iterative: any depth the parser accepts."""
    stack: list[tuple[list[Any], Any]] = [([], obj)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return path, value
        elif isinstance(value, Mapping):
            for key, item in reversed(list(value.items())):
                stack.append((path + [key], key))
                stack.append((path + [key], item))
        elif isinstance(value, (list, tuple)):
            stack.extend((path + [i], item) for i, item in reversed(list(enumerate(value))))
    return None


def loads_json(text: str | bytes, origin: str, *, max_bytes: int | None = None) -> Any:
    """Parse JSON text from a user; every failure is a `PaeeDataError` starting with ``origin`` (a file name,
    ``document 3``)."""
    if max_bytes is not None and len(text) > max_bytes:
        raise PaeeDataError(f"{origin}: {len(text)} bytes exceed the limit of {max_bytes} bytes")
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise PaeeDataError(f"{origin}: not valid UTF-8 ({e})") from e
    with _parse_errors(origin):
        obj = json.loads(text)
    _check_text(obj, text, origin)
    return obj


@contextlib.contextmanager
def _parse_errors(origin: str) -> Iterator[None]:
    """The parser's failures as `PaeeDataError`s starting with ``origin``."""
    try:
        yield
    except json.JSONDecodeError as e:
        raise PaeeDataError(f"{origin}: invalid JSON: {e}") from e
    except RecursionError as e:
        raise PaeeDataError(f"{origin}: JSON nested too deeply (more than about {sys.getrecursionlimit()} levels; "
                            "documents need fewer than 10)") from e
    except ValueError as e:  # Python's int() refuses literals of more than sys.get_int_max_str_digits() digits
        raise PaeeDataError(f"{origin}: a number in the JSON is too long to read ({str(e).splitlines()[0]})") from e


def _check_text(obj: Any, text: str, origin: str, prefix: list[Any] | None = None) -> None:
    """Refuse a parsed value with a string that is not Unicode text (only texts with an escape are walked)."""
    if _SURROGATE_ESCAPE.search(text):
        found = find_surrogate(obj)
        if found is not None:
            path, value = found
            bad = next(c for c in value if 0xD800 <= ord(c) <= 0xDFFF)
            raise PaeeDataError(f"{origin}: {_describe((prefix or []) + path)}: the string holds a lone surrogate "
                                f"{bad!r} (an escape that is not Unicode text; send the character itself or a valid pair)")


_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")


class JsonListReader:
    """The items of a file holding one JSON list, read one at a time (memory: one read block and one item,
    whatever the file's size), with `loads_json`'s checks on each item.

    ``bytes_read`` / ``size`` tell a progress bar how far it is. Iterating again reads the file again.

    Args:
        path: the file.
        what: what the items are, for messages ("documents").
        max_item_bytes: an item still unfinished after this many characters is an error (a file that is not
            a list of small items, or one broken item, never fills the memory).
        block: characters read at a time.
    """

    def __init__(self, path: str | Path, *, what: str = "file", max_item_bytes: int = 64 << 20,
                 block: int = 1 << 20) -> None:
        self.path = Path(path)
        self.what = what
        self.max_item_bytes = max_item_bytes
        self.block = block
        self.bytes_read = 0
        try:
            self.size = self.path.stat().st_size
        except OSError as e:
            raise PaeeDataError(f"cannot read {what} {path}: {e.strerror or e}") from e

    def __iter__(self) -> Iterator[Any]:
        origin = f"cannot read {self.what} {self.path}"
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            f = open(self.path, "rb")
        except OSError as e:
            raise PaeeDataError(f"{origin}: {e.strerror or e}") from e
        with f:
            buf, pos, eof = "", 0, False

            def more() -> bool:  # append a block to buf; False at the end of the file
                nonlocal buf, eof
                if eof:
                    return False
                data = f.read(self.block)
                self.bytes_read = f.tell()
                eof = not data
                try:
                    buf += decoder.decode(data, final=eof)
                except UnicodeDecodeError as e:
                    raise PaeeDataError(f"{origin}: not valid UTF-8 near byte {self.bytes_read - len(data) + e.start}") from e
                return not eof

            def next_char() -> str:  # the next character that is not whitespace ('' at the end)
                nonlocal pos
                while True:
                    pos = _WHITESPACE.match(buf, pos).end()
                    if pos < len(buf) or not more():
                        return buf[pos:pos + 1]

            self.bytes_read = 0
            first = next_char()
            if first != "[":
                kind = {"{": "an object", "": "nothing"}.get(first, "something else")
                raise PaeeDataError(f"{origin}: expected a JSON list of {self.what}, got {kind}")
            pos += 1
            index = 0
            while True:
                c = next_char()
                if c == "]" and index == 0:
                    pos += 1
                    break
                item_origin = f"{origin}: {self.what[:-1] if self.what.endswith('s') else 'item'} {index}"
                while True:  # decode the item, reading more while the block's end cuts it
                    try:
                        with _parse_errors(item_origin):
                            item, end = _DECODER.raw_decode(buf, pos)
                    except PaeeDataError as e:
                        cut = isinstance(e.__cause__, json.JSONDecodeError)  # deep nesting or long numbers are not
                        if cut and len(buf) - pos <= self.max_item_bytes and more():
                            continue
                        if not cut:
                            raise
                        if not eof:
                            raise PaeeDataError(f"{item_origin}: invalid JSON or over {self.max_item_bytes} characters") from None
                        cause = e.__cause__
                        raise PaeeDataError(f"{item_origin}: invalid JSON: {cause.msg} (character {cause.pos - pos} "
                                            "of the item)") from None
                    if end < len(buf) or not more():  # a number at the block's end may go on in the next one
                        break
                _check_text(item, buf[pos:end], origin, [index])
                yield item
                pos, index = end, index + 1
                buf, pos = buf[pos:], 0  # drop what is consumed
                c = next_char()
                if c == ",":
                    pos += 1
                    continue
                if c == "]":
                    pos += 1
                    break
                raise PaeeDataError(f"{item_origin}: expected ',' or ']' after it, got {c or 'the end of the file'!r}")
            if next_char():
                raise PaeeDataError(f"{origin}: text after the closing ']' of the list")


class JsonListWriter:
    """A JSON list written one item at a time to ``<path>.partial`` and renamed to ``path`` by `commit`: the
    items are on disk as they come, ``path`` only ever holds a complete list, and `discard` (or leaving the
    ``with`` block by an exception) removes the partial file.
    """

    def __init__(self, path: str | Path, *, indent: int | None = None) -> None:
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.indent = indent
        self.count = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.partial, "w", encoding="utf-8")
        self._file.write("[")

    def write(self, item: Any) -> None:
        text = json.dumps(item, ensure_ascii=False, indent=self.indent)
        if self.indent is not None:
            text = textwrap.indent(text, " " * self.indent)
        self._file.write(("," if self.count else "") + "\n" + text)
        self.count += 1

    def flush(self) -> None:
        self._file.flush()

    def commit(self) -> None:
        self._file.write("\n]\n")
        self._file.close()
        os.replace(self.partial, self.path)

    def discard(self) -> None:
        self._file.close()
        self.partial.unlink(missing_ok=True)

    def __enter__(self) -> JsonListWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            if not self._file.closed:
                self.commit()
        elif not self._file.closed:
            self.discard()


def read_json(path: str | Path, *, what: str = "file") -> Any:
    """Read and parse a JSON file with `loads_json`'s checks; an unreadable file is a `PaeeDataError` too."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise PaeeDataError(f"cannot read {what} {path}: {e.strerror or e}") from e
    return loads_json(data, f"cannot read {what} {path}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same folder and a rename: the file
    is either the complete new text or untouched (never empty, never half written)."""
    path = Path(path)
    data = text.encode("utf-8")  # before touching the disk: a text that cannot be encoded writes nothing
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would make results private to their writer
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def scratch_dir(prefix: str, parent: str | Path | None = None) -> Path:
    """A new folder ``<parent>/<prefix><pid>-<random>`` for a job's intermediate files (``parent``: the
    system's temporary folder), after `sweep_stale` of the same prefix. The job removes it when it ends."""
    parent = Path(tempfile.gettempdir() if parent is None else parent)
    parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(prefix, parent)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent))


def sweep_stale(prefix: str, parent: str | Path) -> None:
    """Remove the folders ``<parent>/<prefix><pid>-*`` whose process no longer runs: a job killed outright
    (SIGKILL, a lost machine) cannot remove its own, so the next one does."""
    for old in Path(parent).glob(f"{glob.escape(prefix)}*-*"):
        pid = old.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and old.is_dir() and not _running(int(pid)):
            shutil.rmtree(old, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def write_json_atomic(path: str | Path, obj: Any, *, indent: int | None = None) -> None:
    """``obj`` as JSON (UTF-8, non-ASCII kept, newline-terminated) written with `write_text_atomic`."""
    write_text_atomic(path, json.dumps(obj, ensure_ascii=False, indent=indent) + "\n")
