"""The data layer: reading, validating and generating documents, featurizing, decoding.

Imports numpy and tokenizers, never torch: it runs inside Triton's python backend and in clients.
"""

from paee.data.docred import parse_document, read_documents, write_documents
from paee.data.errors import DocumentError, LimitError, PaeeDataError
from paee.data.relations import NA_RELATION, RelationVocab
from paee.data.schema import DOCRED_ENTITY_TYPES, Document, Fact, Mention

__all__ = [
    "DOCRED_ENTITY_TYPES", "Document", "DocumentError", "Fact", "LimitError", "Mention",
    "NA_RELATION", "PaeeDataError", "RelationVocab", "parse_document", "read_documents", "write_documents",
]
