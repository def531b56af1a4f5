"""Corpus-scale prediction on Ray Data: shards of documents in, result shards and an errors file out.

`paee-batch` (and `run_corpus`) run an exported CPU repository's own graphs, tokenizer, featurizer and
decoding (`OnnxPipeline.from_repository`: what the server runs, no torch) in a pool of Ray actors:

    shards --flat_map(read_shard)--> one row per document (its JSON text)
           --map_batches(DocumentPredictor, actor pool)--> one row per document (its records, or its error)
           --> the driver writes ``results-NNNNN.json`` (official DocRED result records, a file committed
               every ``docs_per_file`` documents) and ``errors.json``, with a progress bar

A document that cannot be read, parsed, featurized or run is a row with its error: it lands in
``errors.json`` and the rest goes on. The same code runs on a laptop (``ray.init(num_cpus=2)``) and on a
cluster (``ray job submit -- paee-batch --address auto ...``; the shards and the output folder must then be
on storage every node sees, and the package installed in the nodes' image).

Ray is an optional dependency (``pip install paee[ray]``): it is imported when a job runs, so this module,
like the rest of the runtime floor, imports without it and without torch.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from paee.data.docred import parse_document
from paee.data.errors import PaeeDataError
from paee.data.jsonio import JsonListReader, JsonListWriter, loads_json, write_json_atomic
from paee.errors import PaeeFailure, PaeeUserError
from paee.runtime.pipeline import DEFAULT_BATCH_SIZE, OnnxPipeline

#: Shard formats by suffix: one JSON list of documents, or one document per line.
JSON_LIST_SUFFIXES = (".json",)
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
#: Documents per call of an actor (its pipeline batches them by length inside).
DOCUMENTS_PER_CALL = 64
#: Documents per result file.
DEFAULT_DOCS_PER_FILE = 10_000
RESULTS_PATTERN = "results-{:05d}.json"
ERRORS_FILE = "errors.json"
REPORT_FILE = "report.json"
#: The columns of a predicted row (`DocumentPredictor`): records and error are JSON text / "".
ROW_COLUMNS = ("shard", "index", "title", "records", "error")


def _row(shard: str, index: int, document: str = "", error: str = "") -> dict[str, Any]:
    return {"shard": shard, "index": index, "document": document, "error": error}


def read_shard(item: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """One row ``{shard, index, document, error}`` per document of the shard ``item["path"]``: its JSON text,
    or why it could not be read (a broken JSON list ends its shard with one error row for the rest)."""
    path = Path(item["path"])
    shard = str(path)
    if path.suffix in JSON_LINES_SUFFIXES:
        try:
            with open(path, encoding="utf-8") as f:
                index = 0
                for line in f:
                    if line.strip():
                        yield _row(shard, index, document=line)
                        index += 1
        except (OSError, UnicodeDecodeError) as e:  # the rows before stay good
            yield _row(shard, -1, error=f"cannot read {path}: {e}")
        return
    index = 0
    try:
        for obj in JsonListReader(path, what="documents"):
            yield _row(shard, index, document=json.dumps(obj, ensure_ascii=False))
            index += 1
    except PaeeDataError as e:  # the list cannot be read on from here
        yield _row(shard, index, error=f"{e} (the rest of this shard is not read)")


class DocumentPredictor:
    """The Ray Data callable of one actor: an `OnnxPipeline` over an exported repository, loaded once.

    ``__call__`` takes a batch of rows ``{shard, index, document, error}`` and returns one row
    ``{shard, index, title, records, error}`` per document (``records``: the JSON text of its official result
    records; ``error``: why it has none, "" when it has).
    """

    def __init__(self, repository: str, threads: int = 1, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.pipeline = OnnxPipeline.from_repository(repository, threads=threads, batch_size=batch_size)

    def __call__(self, batch: Mapping[str, np.ndarray]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {name: [] for name in ROW_COLUMNS}

        def emit(shard: str, index: int, title: str, records: str = "", error: str = "") -> None:
            for name, value in zip(ROW_COLUMNS, (shard, index, title, records, error)):
                out[name].append(value)

        docs, where = [], []
        types = self.pipeline.featurizer.config.entity_types
        for shard, index, text, error in zip(batch["shard"], batch["index"], batch["document"], batch["error"]):
            shard, index = str(shard), int(index)
            if error:
                emit(shard, index, "", error=str(error))
                continue
            obj: Any = None
            try:
                obj = loads_json(str(text), f"document {index}")
                doc = parse_document(obj, index, entity_types=types)
            except PaeeDataError as e:
                title = obj.get("title") if isinstance(obj, dict) else None
                emit(shard, index, title if isinstance(title, str) else "", error=str(e))
                continue
            docs.append(doc)
            where.append(shard)
        for shard, (doc, features, triples) in zip(where, self._predict(docs)):
            if isinstance(features, Exception):
                emit(shard, doc.index, doc.title, error=str(features))
            else:
                records = self.pipeline.result_records(doc, features, triples)
                emit(shard, doc.index, doc.title, records=json.dumps(records, ensure_ascii=False))
        return out

    def _predict(self, docs: Sequence[Any]) -> list[tuple[Any, Any, Any]]:
        """`stream` the documents together; if the batch fails as a whole, each alone, so that only the
        documents that fail lose their results (as a `PaeeFailure` in place of their features)."""
        try:
            return list(self.pipeline.stream(docs, chunk=max(1, len(docs)), errors="collect"))
        except Exception as e:  # noqa: BLE001  # one document's run error must not fail the others
            if len(docs) == 1:
                return [(docs[0], PaeeFailure(f"{docs[0].where}: prediction failed: {type(e).__name__}: {e}"), [])]
        return [result for doc in docs for result in self._predict([doc])]


@dataclass
class CorpusJob:
    """One corpus prediction: which repository, which shards, where to, how wide.

    Attributes:
        repository: an exported CPU repository (`paee-export --target cpu`).
        inputs: shard files (``.json`` lists or ``.jsonl`` lines) or folders of them.
        out: the output folder (created; must be empty or absent).
        actors: actors in the pool, each with its own pipeline.
        threads: ONNX Runtime threads per actor (its CPUs in Ray's accounting).
        batch_size: documents per graph batch inside an actor.
        docs_per_file: documents per result file.
    """

    repository: Path
    inputs: Sequence[Path]
    out: Path
    actors: int = 1
    threads: int = 1
    batch_size: int = DEFAULT_BATCH_SIZE
    docs_per_file: int = DEFAULT_DOCS_PER_FILE

    def shards(self) -> list[Path]:
        suffixes = JSON_LIST_SUFFIXES + JSON_LINES_SUFFIXES
        found: list[Path] = []
        for path in map(Path, self.inputs):
            if path.is_dir():
                found += sorted(p for p in path.iterdir() if p.suffix in suffixes and p.is_file())
            elif path.is_file():
                found.append(path)
            else:
                raise PaeeUserError(f"--input {path}: no such file or folder")
        unknown = [str(p) for p in found if p.suffix not in suffixes]
        if unknown:
            raise PaeeUserError(f"--input {unknown[0]}: a shard is a .json list or .jsonl lines of documents")
        if not found:
            raise PaeeUserError(f"--input {', '.join(map(str, self.inputs))}: no .json or .jsonl shards")
        return found

    def check(self) -> None:
        for name in ("actors", "threads", "batch_size", "docs_per_file"):
            if int(getattr(self, name)) < 1:
                raise PaeeUserError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        self.shards()
        if self.out.exists() and (not self.out.is_dir() or any(self.out.iterdir())):
            raise PaeeUserError(f"--out {self.out}: exists and is not an empty folder (results are never mixed "
                                "with an earlier run's)")
        OnnxPipeline.from_repository(self.repository, threads=1)  # a bad repository fails here, not in every actor


@dataclass
class CorpusReport:
    """What a corpus job did: documents predicted and failed, files written, throughput."""

    documents: int = 0
    failed: int = 0
    records: int = 0
    seconds: float = 0.0
    actors: int = 1
    threads: int = 1
    files: list[str] = field(default_factory=list)

    @property
    def docs_per_second(self) -> float:
        return (self.documents + self.failed) / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**vars(self), "docs_per_second": round(self.docs_per_second, 2)}


def build_dataset(job: CorpusJob) -> Any:
    """The Ray dataset of predicted rows (lazy: it runs when iterated)."""
    import ray.data

    items = [{"path": str(p.resolve())} for p in job.shards()]
    return (
        ray.data.from_items(items, override_num_blocks=len(items))
        .flat_map(read_shard, num_cpus=0)  # reading is I/O: it takes no CPU from the actors
        .map_batches(
            DocumentPredictor,
            fn_constructor_kwargs={"repository": str(job.repository.resolve()), "threads": job.threads,
                                   "batch_size": job.batch_size},
            batch_size=DOCUMENTS_PER_CALL, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=job.actors),
            num_cpus=job.threads,
        )
    )


def run_corpus(job: CorpusJob, *, address: str | None = None, num_cpus: int | None = None,
               progress: bool = True) -> CorpusReport:
    """Check ``job``, then run it on the Ray runtime this process is connected to or, when there is none, on one
    started here (``address``: a cluster, e.g. ``"auto"``; else a local runtime of ``num_cpus``) and shut down
    after."""
    try:
        import ray
    except ImportError as e:
        raise PaeeUserError(f"corpus prediction needs Ray Data: pip install 'paee[ray]' ({e})") from e
    if address is not None and num_cpus is not None:
        raise PaeeUserError("--num-cpus sizes a local runtime; a cluster (--address) has its own")
    job.check()  # before a runtime starts
    if ray.is_initialized():
        return _run(job, progress)
    ray.init(address=address, num_cpus=num_cpus, logging_level=logging.WARNING, include_dashboard=False)
    try:
        return _run(job, progress)
    finally:
        ray.shutdown()


def _run(job: CorpusJob, progress: bool) -> CorpusReport:
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # one bar, the driver's, counting documents written
    job.out.mkdir(parents=True, exist_ok=True)
    report = CorpusReport(actors=job.actors, threads=job.threads)
    errors: list[dict[str, Any]] = []
    writer: JsonListWriter | None = None
    in_file = 0
    started = time.perf_counter()
    try:
        with tqdm(desc="predict", unit="doc", disable=not progress) as bar:
            for row in build_dataset(job).iter_rows():
                bar.update()
                if row["error"]:
                    report.failed += 1
                    errors.append({"shard": row["shard"], "document": int(row["index"]), "title": row["title"] or None,
                                   "error": row["error"]})
                    continue
                if writer is None:
                    writer = JsonListWriter(job.out / RESULTS_PATTERN.format(len(report.files)), indent=None)
                for record in json.loads(row["records"]):
                    writer.write(record)
                    report.records += 1
                report.documents += 1
                in_file += 1
                if in_file == job.docs_per_file:  # a complete file every docs_per_file documents
                    writer.commit()
                    report.files.append(writer.path.name)
                    writer, in_file = None, 0
        if writer is not None:
            writer.commit()
            report.files.append(writer.path.name)
            writer = None
    finally:
        if writer is not None:
            writer.discard()
    report.seconds = round(time.perf_counter() - started, 2)
    errors.sort(key=lambda e: (e["shard"], e["document"]))
    write_json_atomic(job.out / ERRORS_FILE, errors, indent=1)
    write_json_atomic(job.out / REPORT_FILE, report.to_json(), indent=1)
    return report


__all__ = [
    "DEFAULT_DOCS_PER_FILE", "DOCUMENTS_PER_CALL", "ERRORS_FILE", "REPORT_FILE", "RESULTS_PATTERN", "CorpusJob",
    "CorpusReport", "DocumentPredictor", "build_dataset", "read_shard", "run_corpus",
]
