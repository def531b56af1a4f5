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

import json
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from paee.data.errors import PaeeDataError

__all__ = ["find_surrogate", "loads_json", "read_json", "write_json_atomic", "write_text_atomic"]

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
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise PaeeDataError(f"{origin}: invalid JSON: {e}") from e
    except RecursionError as e:
        raise PaeeDataError(f"{origin}: JSON nested too deeply (more than about {sys.getrecursionlimit()} levels; "
                            "documents need fewer than 10)") from e
    except ValueError as e:  # Python's int() refuses literals of more than sys.get_int_max_str_digits() digits
        raise PaeeDataError(f"{origin}: a number in the JSON is too long to read ({str(e).splitlines()[0]})") from e
    if _SURROGATE_ESCAPE.search(text):
        found = find_surrogate(obj)
        if found is not None:
            path, value = found
            bad = next(c for c in value if 0xD800 <= ord(c) <= 0xDFFF)
            raise PaeeDataError(f"{origin}: {_describe(path)}: the string holds a lone surrogate {bad!r} "
                                "(an escape that is not Unicode text; send the character itself or a valid pair)")
    return obj


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


def write_json_atomic(path: str | Path, obj: Any, *, indent: int | None = None) -> None:
    """``obj`` as JSON (UTF-8, non-ASCII kept, newline-terminated) written with `write_text_atomic`."""
    write_text_atomic(path, json.dumps(obj, ensure_ascii=False, indent=indent) + "\n")
