"""Small helpers shared by the console scripts: reading user files with clear errors, failing cleanly."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path


def fail(error: BaseException | str, code: int = 2) -> int:
    """Print one line naming the problem (no traceback: the user's input is at fault) and return `code`."""
    prog = Path(sys.argv[0]).name or "paee"
    print(f"{prog}: error: {error}", file=sys.stderr)
    return code


def read_input_documents(path: Path, entity_types: Sequence[str] | None = None, relations=None):
    """Documents of a DocRED-format or text-format JSON file (validated; errors name document and field)."""
    from paee.data.docred import read_documents
    from paee.data.schema import DOCRED_ENTITY_TYPES

    return read_documents(path, entity_types=tuple(entity_types or DOCRED_ENTITY_TYPES), relations=relations)
