"""`paee-train --train T.json --dev D.json --encoder DIR|tiny --out RUN/`: train PAEE.

Writes RUN/best.pt (best dev F1, self-contained), RUN/last.pt (resumable), RUN/metrics.jsonl.
Running the same command again resumes from RUN/last.pt (``--no-resume`` starts over).
Multi-GPU: ``torchrun --nproc-per-node G $(which paee-train) ...`` (DDP).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from paee.cli.common import fail, read_input_documents


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paee-train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_argument_group("data")
    data.add_argument("--train", required=True, type=Path, help="training documents (DocRED JSON)")
    data.add_argument("--dev", type=Path, help="dev documents, evaluated every epoch; best.pt is kept by dev F1")
    data.add_argument("--rel2id", type=Path, help="rel2id.json (default: beside --train, else from the labels)")
    data.add_argument("--rel-info", type=Path, help="rel_info.json with relation names (default: beside --train)")
    data.add_argument("--max-entities", type=int, default=42, help="N, entity slots (DocRED max 42)")
    data.add_argument("--max-length", type=int, default=1024, help="wordpieces per document, at most 1024")
    data.add_argument("--truncate", action="store_true", help="cut longer documents instead of failing")
    data.add_argument("--limit-train", type=int, help="use only the first K training documents")

    model = p.add_argument_group("model")
    model.add_argument("--encoder", required=True, help="local Hugging Face checkpoint directory, or 'tiny'")
    model.add_argument("--variant", default="paee", help="paee, atlop, wo_par, wo_eer, wo_sw, wo_ppp")
    model.add_argument("--backbone", default="tnet", choices=["tnet", "unet"])
    model.add_argument("--gate-pairs", action="store_true", help="at prediction, pairs under lambda are NA")
    model.add_argument("--evidence-weight", type=float, default=0.0,
                       help="weight of the evidence-guided attention loss (DREEAM; needs 'evidence' in the labels). "
                            "0 = the paper's loss (default); 0.1 lets a tiny encoder trained from scratch find the "
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from paee.data.errors import PaeeDataError
    from paee.data.featurizer import Featurizer, FeaturizerConfig
    from paee.inference import resolve_device
    from paee.model.config import LossWeights
    from paee.model.paee import build_model
    from paee.training.setup import default_learning_rates, make_model_config, prepare_encoder, relations_for
    from paee.training.trainer import TrainConfig, Trainer

    try:
        featurizer_config = FeaturizerConfig(max_entities=args.max_entities, max_length=args.max_length, truncate=args.truncate)
        train_docs = read_input_documents(args.train, featurizer_config.entity_types)
        if args.limit_train:
            train_docs = train_docs[: args.limit_train]
        relations = relations_for(train_docs, args.train, args.rel2id, args.rel_info)
        # Re-read with the vocabulary so that unknown relations in the labels are reported by document.
        train_docs = read_input_documents(args.train, featurizer_config.entity_types, relations)[: len(train_docs)]
        dev_docs = read_input_documents(args.dev, featurizer_config.entity_types, relations) if args.dev else None
        if args.evidence_weight > 0 and not any(fact.evidence for doc in train_docs for fact in doc.facts):
            raise ValueError(f"--evidence-weight {args.evidence_weight}: no label in {args.train} has 'evidence' "
                             "sentence ids, so the evidence loss would be 0; drop the option or add evidence")
        source = prepare_encoder(args.encoder, train_docs)
        model_config = make_model_config(
            source, relations, featurizer_config,
            {"variant": args.variant, "backbone": args.backbone, "gate_pairs": args.gate_pairs},
            LossWeights(evidence=args.evidence_weight),
        )
    except (PaeeDataError, FileNotFoundError, ValueError) as e:
        return fail(e)

    lr_encoder, lr_head = default_learning_rates(args.encoder)
    model = build_model(model_config, encoder_dir=str(source.directory) if source.directory else None)
    trainer = Trainer(
        model, model_config, Featurizer(source.tokenizer, featurizer_config, relations), relations, args.out,
        TrainConfig(
            epochs=args.epochs, batch_size=args.batch_size, grad_accum_steps=args.grad_accum,
            lr_encoder=lr_encoder if args.lr_encoder is None else args.lr_encoder,
            lr_head=lr_head if args.lr_head is None else args.lr_head, warmup_ratio=args.warmup_ratio,
            max_grad_norm=args.max_grad_norm, max_steps=args.max_steps, seed=args.seed, amp=args.amp,
        ),
        device=None if args.device == "auto" else resolve_device(args.device),
    )
    try:
        summary = trainer.fit(train_docs, dev_docs, resume=not args.no_resume)
    except PaeeDataError as e:
        return fail(e)
    best = summary.get("best_f1")
    print(f"done: {summary['step']} steps, {summary['seconds']} s; best dev F1 "
          f"{'n/a' if best is None or best < 0 else f'{100 * best:.2f}'} -> {args.out / 'best.pt'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
