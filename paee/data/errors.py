"""Errors a user can cause with their data. Every message names the document and the field."""

from __future__ import annotations

from paee.errors import PaeeUserError


def describe_document(index: int | None, title: str | None) -> str:
    """``document 3 ('Some title')``; either part may be unknown."""
    if index is None:
        return f"document {title!r}"
    if title is None:
        return f"document {index}"
    return f"document {index} ({title!r})"


class PaeeDataError(PaeeUserError):
    """Base class of every data error the package raises on user input."""


class DocumentError(PaeeDataError):
    """A document (or one of its fields) is invalid.

    The message reads ``document 3 ('Some title'), field 'vertexSet[2][0].pos': span [5, 5) is empty``.
    The parts stay available as attributes for programs (Triton error responses, reports).
    """

    def __init__(self, index: int | None, title: str | None, field: str | None, problem: str):
        self.index = index
        self.title = title
        self.field = field
        self.problem = problem
        where = describe_document(index, title)
        if field:
            where += f", field {field!r}"
        super().__init__(f"{where}: {problem}")


class LimitError(DocumentError):
    """A document is valid but exceeds a configured limit (entities, mentions, sentences, wordpieces).

    The message names the limit and the option that raises it.
    """
