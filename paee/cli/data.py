"""``paee-data``: write a synthetic corpus (``synth``), print corpus statistics (``stats``), or convert a
biomedical corpus (CDR / GDA, PubTator or the preprocessed ``.data`` form) to DocRED JSON (``convert``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from paee.data.biomed import READERS, convert, summarize
from paee.data.docred import read_documents, write_documents
from paee.data.errors import PaeeDataError
from paee.data.stats import corpus_stats, format_stats
from paee.data.synthetic import SyntheticConfig, write_synthetic_splits
from paee.errors import console_script

PROG = "paee-data"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    synth = sub.add_parser("synth", help="write a seeded synthetic DocRED-format corpus",
                           description="Write train.json, dev.json, test.json, rel2id.json and rel_info.json.")
    synth.add_argument("--out", type=Path, required=True, help="output directory (created if missing)")
    synth.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    for split, size in (("train", 240), ("dev", 60), ("test", 60)):
        synth.add_argument(f"--{split}", type=int, default=size, metavar="N",
                           help=f"documents in {split}.json (default {size})")
    synth.add_argument("--max-entities", type=int, default=None, metavar="N",
                       help="most entities per document (default 42, the DocRED maximum)")
    synth.add_argument("--preset", choices=["docred", "plain"], default="docred",
                       help="docred: DocRED-like (distractors, joined clauses, pronouns, long documents; default); "
                            "plain: short documents, one statement per sentence, every co-occurrence a fact "
                            "(SyntheticConfig.plain)")

    stats = sub.add_parser("stats", help="corpus statistics of a DocRED-format or text-format file")
    stats.add_argument("file", type=Path)
    stats.add_argument("--json", action="store_true", help="print the statistics as JSON")
    stats.add_argument("--max-entities", type=int, default=42, metavar="N",
                       help="count documents with more entities than this (default 42)")
    convert = sub.add_parser("convert", help="convert CDR / GDA (PubTator or .data) to DocRED JSON",
                             description="Write a DocRED-format JSON list (the PMID is the title) and print what was "
                                         "kept and dropped (unlinked mentions, relations to concepts without a "
                                         "mention, merged sentences).")
    convert.add_argument("file", type=Path, help="the corpus file, e.g. CDR_TrainingSet.PubTator.txt or train_filter.data")
    convert.add_argument("--format", choices=list(READERS), required=True,
                         help="pubtator: BioCreative V PubTator; cdr-data: Christopoulou et al. (2019)'s .data lines")
    convert.add_argument("--out", type=Path, required=True, help="output JSON file")
    return parser


def _convert(args: argparse.Namespace) -> int:
    docs = convert(args.file, args.format)
    write_documents(args.out, docs)
    print(f"{args.file} -> {args.out}: {summarize(docs).summary()}")
    return 0


def _synth(args: argparse.Namespace) -> int:
    sizes = {"train": args.train, "dev": args.dev, "test": args.test}
    if any(n < 0 for n in sizes.values()):
        raise PaeeDataError(f"split sizes must be >= 0, got {sizes}")
    make = SyntheticConfig.plain if args.preset == "plain" else SyntheticConfig
    config = make()
    if args.max_entities is not None:
        # A small N also lowers the typical size, so that --max-entities 10 gives documents of 4-10.
        config = make(max_entities=args.max_entities,
                      typical_max_entities=min(config.typical_max_entities, args.max_entities),
                      min_entities=min(config.min_entities, args.max_entities))
    written = write_synthetic_splits(args.out, config, sizes, seed=args.seed)
    for name, path in written.items():
        print(f"wrote {path}" + (f" ({sizes[name]} documents)" if name in sizes else ""))
    return 0


def _stats(args: argparse.Namespace) -> int:
    stats = corpus_stats(read_documents(args.file, entity_types=None), max_entities=args.max_entities)
    print(json.dumps(stats, indent=1) if args.json else format_stats(stats))
    return 0


#: Sub-commands of ``paee-data``.
COMMANDS = {"synth": _synth, "stats": _stats, "convert": _convert}


main = console_script(_parser, lambda args: COMMANDS[args.command](args))


if __name__ == "__main__":
    sys.exit(main())
