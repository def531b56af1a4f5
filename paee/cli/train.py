"""`paee-train --train T.json --dev D.json --encoder DIR|tiny --out RUN/`: train PAEE.

Writes RUN/best.pt (best dev F1, self-contained), RUN/last.pt (resumable), RUN/metrics.jsonl.
Running the same command again resumes from RUN/last.pt (``--no-resume`` starts over).
Multi-GPU: ``torchrun --nproc-per-node G $(which paee-train) ...`` (DDP).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from paee.data.docred import read_documents
from paee.data.featurizer import FeaturizerConfig, parse_pair_types
from paee.data.schema import entity_types_of
from paee.data.type_map import SCHEMA_TYPE_MAPS, read_type_map
from paee.errors import PaeeUserError, console_script
from paee.inference import resolve_device
from paee.model.config import RELATION_LOSS_NAMES, LossWeights
from paee.model.head import BACKBONES, VARIANTS
from paee.model.paee import build_model
from paee.training.setup import default_learning_rates, make_model_config, prepare_encoder, relations_for
from paee.training.trainer import TrainConfig, Trainer

#: Featurizer sizes a training run sets (the model keeps them: they are its N, M, S and length limit).
_DEFAULT_SIZES = FeaturizerConfig()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paee-train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_argument_group("data")
    data.add_argument("--train", required=True, type=Path, help="training documents (DocRED JSON)")
    data.add_argument("--dev", type=Path, help="dev documents, evaluated every epoch; best.pt is kept by dev F1")
    data.add_argument("--rel2id", type=Path, help="rel2id.json (default: beside --train, else from the labels)")
    data.add_argument("--rel-info", type=Path, help="rel_info.json with relation names (default: beside --train)")
    data.add_argument("--entity-types", help="the schema's entity types, comma-separated, e.g. Chemical,Disease "
                                             "(default: those of the training data; DocRED's six when it uses no other)")
    data.add_argument("--pair-types", default="", help="candidate (subject:object) type pairs, comma-separated, e.g. "
                                                       "Chemical:Disease; other pairs are never trained, predicted or "
                                                       "scored (default: every pair)")
    data.add_argument("--type-map", type=Path, help="JSON detector label -> entity type, stored in the checkpoint for "
                                                    "plain-text input (paee-predict --raw); default: the schema's own "
                                                    "(DocRED's types: spaCy's labels mapped as paee.data.type_map says)")
    data.add_argument("--max-entities", type=int, default=_DEFAULT_SIZES.max_entities,
                      help=f"N, entity slots per document (default {_DEFAULT_SIZES.max_entities}, the DocRED maximum)")
    data.add_argument("--max-mentions", type=int, default=_DEFAULT_SIZES.max_mentions,
                      help=f"M, mention slots per entity (default {_DEFAULT_SIZES.max_mentions}; DocRED's maximum is 23)")
    data.add_argument("--max-sentences", type=int, default=_DEFAULT_SIZES.max_sentences,
                      help=f"S, sentence slots per document (default {_DEFAULT_SIZES.max_sentences}; DocRED's maximum is 21)")
    data.add_argument("--max-length", type=int, default=_DEFAULT_SIZES.max_length,
                      help=f"wordpieces per document, at most {_DEFAULT_SIZES.max_length}")
    data.add_argument("--truncate", action="store_true",
                      help="cut longer documents instead of failing (for this run only: the model does not keep it)")
    data.add_argument("--limit-train", type=int, help="use only the first K training documents")

    model = p.add_argument_group("model")
    model.add_argument("--encoder", required=True, help="local Hugging Face checkpoint directory, or 'tiny'")
    model.add_argument("--variant", default="paee", choices=list(VARIANTS), help="the model or one of its ablations")
    model.add_argument("--backbone", default="tnet", choices=list(BACKBONES))
    model.add_argument("--gate-pairs", action="store_true", help="at prediction, pairs under lambda are NA")
    model.add_argument("--rel-loss", default="paper", choices=list(RELATION_LOSS_NAMES),
                       help="relation loss: 'paper' = eq. 9, the balanced softmax with a learned threshold class "
                            "(default); 'atlop' = ATLOP's adaptive-threshold loss (they differ on multi-label pairs)")
    model.add_argument("--evidence-weight", type=float, default=0.0,
                       help="weight of the evidence-guided attention loss (DREEAM; needs 'evidence' in the labels). "
                            "0 = none, as in the paper (default); 0.1 lets a tiny encoder trained from scratch find the "
                            "relation words (README, 'Learning')")

    opt = p.add_argument_group("optimisation")
    opt.add_argument("--out", required=True, type=Path, help="run directory")
    opt.add_argument("--epochs", type=int, default=30)
    opt.add_argument("--batch-size", type=int, default=4)
    opt.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps")
    opt.add_argument("--lr-encoder", type=float, help="default: 1e-3 for --encoder tiny (from scratch), else 5e-5")
    opt.add_argument("--lr-head", type=float, help="default: 2e-3 for --encoder tiny, else 1e-4")
    opt.add_argument("--warmup-ratio", type=float, default=0.06)
    opt.add_argument("--max-grad-norm", type=float, default=1.0)
    opt.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    opt.add_argument("--seed", type=int, default=66)
    opt.add_argument("--amp", default="auto", choices=["auto", "off", "bf16", "fp16"], help="mixed precision (CUDA only)")
    opt.add_argument("--device", default="auto")
    opt.add_argument("--no-resume", action="store_true", help="ignore RUN/last.pt")
    return p


def _train(args: argparse.Namespace) -> int:
    for name in ("epochs", "batch_size", "grad_accum"):
        if getattr(args, name) < 1:
            raise PaeeUserError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    limit = args.limit_train or None
    given_types = tuple(t.strip() for t in args.entity_types.split(",") if t.strip()) if args.entity_types else None
    train_docs = read_documents(args.train, entity_types=given_types)[:limit]
    if not train_docs:
        raise PaeeUserError(f"{args.train}: no training documents")
    entity_types = given_types or entity_types_of(train_docs)
    # the checkpoint carries its detector type map: the one given, else its schema's (DocRED's), else none
    type_map = read_type_map(args.type_map) if args.type_map else SCHEMA_TYPE_MAPS.get(tuple(entity_types))
    featurizer_config = FeaturizerConfig(
        max_entities=args.max_entities, max_mentions=args.max_mentions, max_sentences=args.max_sentences,
        max_length=args.max_length, entity_types=entity_types,
        pair_types=parse_pair_types(args.pair_types), type_map=None if type_map is None else type_map.to_json(),
    )
    relations = relations_for(train_docs, args.train, args.rel2id, args.rel_info)
    # Re-read with the vocabulary so that unknown relations in the labels are reported by document.
    train_docs = read_documents(args.train, entity_types=featurizer_config.entity_types, relations=relations)[:limit]
    dev_docs = read_documents(args.dev, entity_types=featurizer_config.entity_types, relations=relations) if args.dev else None
    if args.evidence_weight > 0 and not any(fact.evidence for doc in train_docs for fact in doc.facts):
        raise PaeeUserError(f"--evidence-weight {args.evidence_weight}: no label in {args.train} has 'evidence' "
                            "sentence ids, so the evidence loss would be 0; drop the option or add evidence")
    source = prepare_encoder(args.encoder, train_docs)
    model_config = make_model_config(
        source, relations, featurizer_config,
        {"variant": args.variant, "backbone": args.backbone, "gate_pairs": args.gate_pairs},
        LossWeights(evidence=args.evidence_weight, relation_loss=args.rel_loss),
    )
    lr_encoder, lr_head = default_learning_rates(args.encoder)
    model = build_model(model_config, encoder_dir=str(source.directory) if source.directory else None)
    trainer = Trainer(
        model, source.tokenizer, args.out,
        TrainConfig(
            epochs=args.epochs, batch_size=args.batch_size, grad_accum_steps=args.grad_accum,
            lr_encoder=lr_encoder if args.lr_encoder is None else args.lr_encoder,
            lr_head=lr_head if args.lr_head is None else args.lr_head, warmup_ratio=args.warmup_ratio,
            max_grad_norm=args.max_grad_norm, max_steps=args.max_steps, seed=args.seed, amp=args.amp, truncate=args.truncate,
        ),
        device=None if args.device == "auto" else resolve_device(args.device),
    )
    summary = trainer.fit(train_docs, dev_docs, resume=not args.no_resume)
    if trainer.dist.is_main:
        best = summary.get("best_f1")
        print(f"done: {summary['step']} steps, {summary['seconds']} s; best dev F1 "
              f"{'n/a' if best is None or best < 0 else f'{100 * best:.2f}'} -> {args.out / 'best.pt'}", file=sys.stderr)
    return 0


main = console_script(build_parser, _train)


if __name__ == "__main__":
    sys.exit(main())
