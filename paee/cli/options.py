"""Options shared by the commands that featurize documents at run time (paee-predict, paee-export, paee-bench).

The length limit is a run-time setting, not a model size: the encoder reads any length as overlapping windows,
so every such command may raise (or lower) the limit it got from the checkpoint, and truncation happens only
when this call asks for it.
"""

from __future__ import annotations

import argparse
from typing import Any

from paee.data.featurizer import MAX_SUPPORTED_LENGTH
from paee.errors import PaeeUserError


def add_length_options(parser: argparse.ArgumentParser, truncate: bool = True) -> None:
    """``--max-length`` (and ``--truncate``) on a command's parser."""
    parser.add_argument("--max-length", type=int, default=None,
                        help=f"longest document in wordpieces with markers (default: the checkpoint's; at most "
                             f"{MAX_SUPPORTED_LENGTH}); longer ones are an error unless --truncate")
    if truncate:
        parser.add_argument("--truncate", action="store_true",
                            help="cut documents over --max-length instead of failing; the lost mentions are reported")


def length_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The featurizer settings this call asks for (``FeaturizerConfig`` field -> value)."""
    overrides: dict[str, Any] = {}
    if args.max_length is not None:
        if not 1 <= args.max_length <= MAX_SUPPORTED_LENGTH:
            raise PaeeUserError(f"--max-length must be in 1..{MAX_SUPPORTED_LENGTH}, got {args.max_length}")
        overrides["max_length"] = args.max_length
    if getattr(args, "truncate", False):
        overrides["truncate"] = True
    return overrides
