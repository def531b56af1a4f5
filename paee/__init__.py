"""PAEE: Pair-Aware and Entity-Enhanced document-level relation extraction.

Sub-packages: `paee.data` (documents, synthetic corpus, featurizer, decoder; numpy only, no torch),
`paee.evaluation` (official DocRED metrics), `paee.model` (PyTorch reference model), `paee.cli`.
"""

__version__ = "0.1.0"
