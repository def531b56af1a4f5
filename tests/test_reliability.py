"""One bad request fails alone (issue 18): hostile input through the real commands and a real tritonserver,
corrupt checkpoints, a killed backend stub, and nothing lost or cut without telling.

Each case goes through the real thing: the console scripts' ``main`` (exit status and stderr), the Python
API's constructors, and the served ensemble on a real tritonserver (tests/serving_support.py). The only
exception an input may cause is the package's user error (`PaeeUserError`), one line, naming the document
and the field; a served bad document is a 400-class answer of its own while its neighbours are served.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time

import pytest

from paee.data.errors import PaeeDataError
from paee.errors import PaeeUserError

pytest_plugins = ["serving_support"]


# --- the served ensemble -----------------------------------------------------------------------------------

#: What the HTTP and gRPC clients report for a 400-class answer.
CLIENT_ERROR = {"http": "400", "grpc": "StatusCode.INVALID_ARGUMENT"}


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_hostile_requests_mixed_into_a_good_load_fail_alone_with_one_line_400(protocol, server, model_files):
    """16 good clients and a stream of every hostile kind at once: 0 good requests fail; each hostile kind
    gets a one-line INVALID_ARGUMENT naming its problem, without traceback or server path."""
    from paee_bench.hostile import HOSTILE, HOSTILE_MESSAGES, mixed_load

    url = server.http_url if protocol == "http" else server.grpc_url
    report = mixed_load(url, protocol, model_files["docs"], clients=16, good_per_client=3,
                        hostile_clients=4, hostile_per_kind=2)
    assert report.good_sent == 48 and report.good_failed == 0, report.good_errors[:3]
    assert set(report.hostile_status) == set(HOSTILE)
    for kind, statuses in report.hostile_status.items():
        assert dict(statuses) == {CLIENT_ERROR[protocol]: 2}, (kind, dict(statuses), report.hostile_messages[kind])
        for message in report.hostile_messages[kind]:
            assert "\n" not in message and "Traceback" not in message and "/1/model.py" not in message, message
            assert "document 0" in message and HOSTILE_MESSAGES[kind] in message, message


def _children(pid: int) -> dict[int, list[str]]:
    """Child processes of ``pid``: child pid -> command line."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0")]
        except OSError:
            continue
        if ppid == pid:
            found[int(entry)] = argv
    return found


def test_paee_serve_restarts_the_server_when_a_backend_stub_is_killed(server, model_files):
    """kill -9 of the encoder's python stub: Triton alone fails every request while its health says ready;
    paee-serve notices within its watch interval, restarts tritonserver on the same ports (the health
    endpoint refuses meanwhile) and requests succeed again with the same answer."""
    import re
    import subprocess
    import sys
    import threading

    from paee.serving.client import PaeeClient, PaeeServingError
    from paee.serving.server import free_port

    http_port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "paee.cli.serve", str(server.model_repository), "--http-port", str(http_port),
         "--grpc-port", str(free_port()), "--metrics-port", str(free_port())],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    doc = model_files["docs"][0]
    try:
        deadline = time.monotonic() + 180
        while not any(line.strip().startswith("log") for line in lines) and time.monotonic() < deadline:
            assert proc.poll() is None, "".join(lines)
            time.sleep(0.2)
        triton_pid = int(re.search(r"ready \(pid (\d+)\)", "".join(lines)).group(1))
        with PaeeClient(f"127.0.0.1:{http_port}", timeout_s=30, retries=0) as client:
            before = client.predict(doc)
            encoder = [pid for pid, argv in _children(triton_pid).items() if any("paee_encoder" in a for a in argv)]
            assert len(encoder) == 1, _children(triton_pid)
            os.kill(encoder[0], signal.SIGKILL)
            killed, failures, recovered = time.monotonic(), 0, None
            while time.monotonic() - killed < 180:
                try:
                    after = client.predict(doc)
                    if any("restarting" in line for line in lines):
                        recovered = time.monotonic() - killed
                        break
                except PaeeServingError:
                    failures += 1
                time.sleep(0.25)
            assert recovered is not None, "".join(lines)
            assert after == before
            assert client.is_ready()
        deadline = time.monotonic() + 60  # the client may be served a moment before paee-serve says so
        while not any("ready again" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.2)
        text = "".join(lines)
        assert "backend stub(s) paee_encoder_0_0 died; restarting tritonserver" in text, text
        assert "ready again" in text, text
        print(f"stub killed: requests failed for {recovered:.1f} s ({failures} failed attempts)")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- the commands: every bad input is one line on stderr and exit status 2 ------------------------------

def _word_doc(title: str = '"T"', word: str = '"Alice"', number: str = "0") -> str:
    """The JSON text of a one-document file, with raw JSON pasted in for the title, a word and a sent_id."""
    return ('[{"title": %s, "sents": [[%s, "met", "Bob", "."]], "vertexSet": ['
            '[{"name": "Alice", "sent_id": %s, "pos": [0, 1], "type": "PER"}], '
            '[{"name": "Bob", "sent_id": 0, "pos": [2, 3], "type": "PER"}]], '
            '"labels": [{"h": 0, "t": 1, "r": "P17", "evidence": [0]}]}]' % (title, word, number))


#: name -> (file content, what the message must say)
BAD_FILES = {
    "deep nesting": ("[" * 10_000 + "]" * 10_000, "nested too deeply"),
    "5,000-digit integer": (_word_doc(number="9" * 5_000), "too long to read"),
    "lone surrogate in a word": (_word_doc(word='"\\ud800"'), "document 0, field 'sents[0][0]'"),
    "lone surrogate in the title": (_word_doc(title='"\\udfff"'), "document 0, field 'title'"),
    "not UTF-8": (b"\xff\xfe[", "not valid UTF-8"),
    "invalid JSON": ("[{", "invalid JSON"),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained one epoch on a synthetic corpus: its run directory and corpus."""
    from paee.cli.train import main as train_main
    from paee.data.synthetic import SyntheticConfig, write_synthetic_splits

    out = tmp_path_factory.mktemp("reliability")
    write_synthetic_splits(out / "corpus", SyntheticConfig(), sizes={"train": 8, "dev": 2, "test": 3}, seed=5)
    assert train_main(["--train", str(out / "corpus/train.json"), "--encoder", "tiny", "--out", str(out / "run"),
                       "--epochs", "1", "--batch-size", "4", "--seed", "3", "--truncate"]) == 0
    return out


def _commands(trained, bad):
    """command name -> (main, argv) that reads ``bad`` as its input file."""
    from paee.cli.client import main as client_main
    from paee.cli.data import main as data_main
    from paee.cli.evaluate import main as eval_main
    from paee.cli.predict import main as predict_main
    from paee.cli.train import main as train_main
    from paee.serving.server import free_port

    corpus, out = trained / "corpus", bad.parent
    return {
        "paee-predict": (predict_main, ["--checkpoint", str(trained / "run/best.pt"), "--input", str(bad), "--out", str(out / "r.json")]),
        "paee-train": (train_main, ["--train", str(bad), "--encoder", "tiny", "--out", str(out / "run"), "--epochs", "1"]),
        "paee-eval --gold": (eval_main, ["--pred", str(corpus / "empty.json"), "--gold", str(bad), "--out", str(out / "s.json")]),
        "paee-eval --pred": (eval_main, ["--pred", str(bad), "--gold", str(corpus / "dev.json"), "--out", str(out / "s.json")]),
        "paee-client": (client_main, ["--url", f"127.0.0.1:{free_port()}", str(bad), "--out", str(out / "c.json")]),
        "paee-data stats": (data_main, ["stats", str(bad)]),
    }


def _assert_one_line_error(capsys, rc: int, needle: str) -> str:
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    last = err.splitlines()[-1]
    assert "error:" in last and needle in last, err
    assert "Traceback" not in err, err
    return last


@pytest.mark.parametrize("command", ["paee-predict", "paee-train", "paee-eval --gold", "paee-eval --pred",
                                     "paee-client", "paee-data stats"])
@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_every_command_reports_a_hostile_input_file_in_one_line(kind, command, trained, tmp_path, capsys):
    content, needle = BAD_FILES[kind]
    bad = tmp_path / "bad.json"
    (bad.write_bytes if isinstance(content, bytes) else bad.write_text)(content)
    (trained / "corpus/empty.json").write_text("[]")
    main, argv = _commands(trained, bad)[command]
    _assert_one_line_error(capsys, main(argv), needle)


def _corrupt(trained, tmp_path, kind: str):
    """A checkpoint file broken in one way."""
    import torch

    path = tmp_path / f"{kind}.pt"
    if kind == "random bytes":
        path.write_bytes(random.Random(0).randbytes(4096))
        return path
    if kind == "zip header, then garbage":
        path.write_bytes(b"PK\x03\x04" + random.Random(1).randbytes(4096))
        return path
    payload = torch.load(trained / "run/best.pt", weights_only=True)
    weights = payload["state_dict"]
    first = next(iter(weights))
    if kind == "missing tensor":
        del weights[first]
    elif kind == "wrong shape":
        weights[first] = torch.zeros(3, 3)
    elif kind == "NaN weights":
        payload["state_dict"] = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in weights.items()}
    torch.save(payload, path)
    return path


#: kind -> what the one-line message says
BAD_CHECKPOINTS = {
    "random bytes": "not a torch file",
    "zip header, then garbage": "cannot be read as a PyTorch checkpoint",
    "missing tensor": "1 tensor(s) missing (encoder.",
    "wrong shape": "is [3, 3] in the file",
    "NaN weights": "hold NaN or infinite values",
}


@pytest.mark.parametrize("command", ["paee-predict", "paee-export"])
@pytest.mark.parametrize("kind", list(BAD_CHECKPOINTS))
def test_a_corrupt_checkpoint_is_one_line_naming_the_file_and_the_fault(kind, command, trained, tmp_path, capsys):
    from paee.cli.predict import main as predict_main
    from paee_export.cli import main as export_main

    bad = _corrupt(trained, tmp_path, kind)
    if command == "paee-predict":
        rc = predict_main(["--checkpoint", str(bad), "--input", str(trained / "corpus/test.json"), "--out", str(tmp_path / "r.json")])
    else:
        rc = export_main(["--checkpoint", str(bad), "--out", str(tmp_path / "repo")])
    last = _assert_one_line_error(capsys, rc, BAD_CHECKPOINTS[kind])
    assert str(bad.name) in last
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "repo").exists()


@pytest.mark.parametrize("argv, needle", [
    (["predict", "--batch-size", "0"], "batch size must be >= 1"),
    (["predict", "--batch-size", "-1"], "batch size must be >= 1"),
    (["predict", "--device", "cuda"], "no CUDA device"),
    (["predict", "--device", "tpu:x"], "not a device name"),
    (["train", "--batch-size", "0"], "--batch-size must be >= 1"),
    (["train", "--batch-size", "-1"], "--batch-size must be >= 1"),
    (["train", "--epochs", "0"], "--epochs must be >= 1"),
    (["train", "--device", "cuda"], "no CUDA device"),
    (["train-empty"], "no training documents"),
])
def test_bad_options_are_one_line_errors(argv, needle, trained, tmp_path, capsys):
    import torch

    from paee.cli.predict import main as predict_main
    from paee.cli.train import main as train_main

    if "cuda" in argv and torch.cuda.is_available():
        pytest.skip("this host has CUDA")
    command, options = argv[0], argv[1:]
    if command == "predict":
        rc = predict_main(["--checkpoint", str(trained / "run/best.pt"), "--input", str(trained / "corpus/test.json"),
                           "--out", str(tmp_path / "r.json"), *options])
    else:
        train = trained / "corpus/train.json"
        if command == "train-empty":
            train = tmp_path / "empty.json"
            train.write_text("[]")
        rc = train_main(["--train", str(train), "--encoder", "tiny", "--out", str(tmp_path / "run"), *options])
        assert not (tmp_path / "run/best.pt").exists()
    _assert_one_line_error(capsys, rc, needle)


# --- nothing lost or cut without telling -------------------------------------------------------------------

def test_a_failed_prediction_leaves_the_previous_output_untouched(trained, tmp_path, capsys):
    from paee.cli.predict import main as predict_main

    out = tmp_path / "result.json"
    out.write_text('[{"title": "previous"}]\n')
    bad = tmp_path / "bad.json"
    bad.write_text(_word_doc(title='"\\udfff"'))
    rc = predict_main(["--checkpoint", str(trained / "run/best.pt"), "--input", str(bad), "--out", str(out)])
    assert rc == 2 and out.read_text() == '[{"title": "previous"}]\n'
    assert [p.name for p in tmp_path.iterdir()] == sorted(["result.json", "bad.json"]) or \
        sorted(p.name for p in tmp_path.iterdir()) == ["bad.json", "result.json"]  # no temporary file left


def test_client_with_the_server_down_does_not_overwrite_its_output(trained, tmp_path, capsys):
    from paee.cli.client import main as client_main
    from paee.serving.server import free_port

    out = tmp_path / "result.json"
    out.write_text('[{"title": "previous"}]\n')
    rc = client_main(["--url", f"127.0.0.1:{free_port()}", "--retries", "0", str(trained / "corpus/test.json"), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and out.read_text() == '[{"title": "previous"}]\n'
    assert "nothing written" in err and "--errors" in err
    errors = tmp_path / "errors.json"
    rc = client_main(["--url", f"127.0.0.1:{free_port()}", "--retries", "0", str(trained / "corpus/test.json"),
                      "--out", str(out), "--errors", str(errors)])
    assert rc == 1 and json.loads(out.read_text()) == []  # asked for: the served part (none), and why
    assert [e["document"] for e in json.loads(errors.read_text())] == [0, 1, 2]


def test_duplicate_titles_are_warned_about(trained, tmp_path, capsys):
    from paee.cli.predict import main as predict_main

    docs = json.loads((trained / "corpus/test.json").read_text())
    docs[1]["title"] = docs[0]["title"]
    path = tmp_path / "dup.json"
    path.write_text(json.dumps(docs))
    assert predict_main(["--checkpoint", str(trained / "run/best.pt"), "--input", str(path), "--out", str(tmp_path / "r.json")]) == 0
    assert "1 title(s) carried by more than one document" in capsys.readouterr().err


@pytest.mark.parametrize("build, needle", [
    (lambda: __import__("paee.data.schema", fromlist=["Fact"]).Fact(0, 1, "P17", (-1,)), "evidence -1"),
    (lambda: __import__("paee.data.schema", fromlist=["Fact"]).Fact(0, 1, "P17", (True,)), "evidence True"),
    (lambda: __import__("paee.data.schema", fromlist=["Mention"]).Mention("x", 0, 0, 10**30, "PER"), "end: "),
    (lambda: __import__("paee.data.schema", fromlist=["Mention"]).Mention("x", -1, 0, 1, "PER"), "sent_id: -1"),
    (lambda: __import__("paee.data.schema", fromlist=["Mention"]).Mention("x", 0, 2, 2, "PER"), "is empty"),
])
def test_python_api_constructors_refuse_bad_indices(build, needle):
    with pytest.raises(PaeeDataError, match=needle.replace("[", r"\[")):
        build()


def test_python_api_document_checks_evidence_and_text():
    from paee.data.errors import DocumentError
    from paee.data.schema import Document, Fact, Mention

    entities = ((Mention("A", 0, 0, 1, "PER"),), (Mention("B", 0, 2, 3, "PER"),))
    sents = (("A", "met", "B"),)
    with pytest.raises(DocumentError, match=r"field 'labels\[0\].evidence': sentence 1 is not among the document's 1"):
        Document("T", sents, entities, (Fact(0, 1, "P17", (1,)),), index=3)
    with pytest.raises(DocumentError, match=r"field 'labels\[0\]': head 0 / tail 2 outside"):
        Document("T", sents, entities, (Fact(0, 2, "P17"),))
    with pytest.raises(DocumentError, match=r"field 'sents\[0\]\[1\]': holds a lone surrogate"):
        Document("T", (("A", "\ud800", "B"),), entities)
    with pytest.raises(DocumentError, match=r"field 'title': holds a lone surrogate"):
        Document("\udfff", sents, entities)


def test_featurize_many_collect_fails_only_the_document_the_tokenizer_refuses(tiny_tokenizer):
    """A word the tokenizer cannot read (here: not a string, in a document built past the checks) fails its
    own document, not its chunk."""
    from paee.data.errors import DocumentError
    from paee.data.featurizer import Featurizer
    from paee.data.schema import Document, Mention

    entities = ((Mention("A", 0, 0, 1, "PER"),), (Mention("B", 0, 2, 3, "PER"),))
    docs = [Document(f"T{i}", (("A", "met", "B"),), entities, index=i) for i in range(3)]
    object.__setattr__(docs[1], "sents", (("A", b"bytes", "B"),))  # what no constructor lets through
    results = Featurizer(tiny_tokenizer).featurize_many(docs, errors="collect")
    assert isinstance(results[1], DocumentError) and "document 1 ('T1'), field 'sents'" in str(results[1])
    assert results[0].num_tokens == results[2].num_tokens > 0


# --- fuzz: mutated documents through the reader, the featurizer and one served batch ---------------------

#: Values a mutation puts in place of a field.
_HOSTILE_VALUES = [None, True, -1, 2**31, 10**30, 1.5, float("nan"), float("inf"), "", "\ud800", "x" * 300,
                   [], {}, [[[[[]]]]], {"a": [1, {"b": None}]}]


def _mutate(obj, rng: random.Random, depth: int = 0):
    """``obj`` with one random change somewhere: a key dropped, a value replaced by a hostile one, a list
    emptied, deep nesting, or a string given a lone surrogate."""
    if isinstance(obj, dict) and obj:
        key = rng.choice(sorted(obj))
        out = dict(obj)
        roll = rng.random()
        if roll < 0.2:
            del out[key]
        elif roll < 0.45 or depth > 4:
            out[key] = rng.choice(_HOSTILE_VALUES)
        else:
            out[key] = _mutate(obj[key], rng, depth + 1)
        return out
    if isinstance(obj, list) and obj:
        out = list(obj)
        i = rng.randrange(len(out))
        roll = rng.random()
        if roll < 0.1:
            return []
        if roll < 0.2:
            return json.loads("[" * 50 + "0" + "]" * 50)
        out[i] = rng.choice(_HOSTILE_VALUES) if roll < 0.45 or depth > 4 else _mutate(out[i], rng, depth + 1)
        return out
    if isinstance(obj, str):
        return obj[: len(obj) // 2] + "\udc80" + obj[len(obj) // 2:]
    return rng.choice(_HOSTILE_VALUES)


def _fuzz_texts(good: list[dict], n: int, seed: int) -> list[str]:
    """``n`` mutated documents as JSON text (lone surrogates escaped, NaN as the literal Python writes)."""
    rng = random.Random(seed)
    return [json.dumps(_mutate(rng.choice(good), rng)) for _ in range(n)]


def test_fuzzed_documents_raise_only_user_errors_and_good_ones_in_the_batch_succeed(tiny_tokenizer):
    """400 mutated documents (seeded) through the reader and the featurizer, mixed with good ones in each
    featurizer batch: the only exception is `PaeeUserError`, and every good document is featurized."""
    from paee.data.docred import parse_document
    from paee.data.featurizer import DocFeatures, Featurizer
    from paee.data.jsonio import loads_json
    from paee.data.synthetic import generate_corpus

    featurizer = Featurizer(tiny_tokenizer)
    good = [d.to_json() for d in generate_corpus(n_docs=4, seed=3)]
    good = [d for d in good if not isinstance(featurizer.featurize_many([parse_document(d, 0)], errors="collect")[0], Exception)][:2] \
        or pytest.skip("no synthetic document fits the tiny tokenizer's length")
    refused = 0
    texts = _fuzz_texts(good, 400, seed=18)
    for lo in range(0, len(texts), 20):
        batch = []
        for i, text in enumerate(texts[lo: lo + 20]):
            try:
                batch.append(parse_document(loads_json(text, f"document {i}"), i))
            except PaeeUserError:
                refused += 1
        batch += [parse_document(d, 100 + k) for k, d in enumerate(good)]
        results = featurizer.featurize_many(batch, errors="collect")
        assert all(isinstance(r, (DocFeatures, PaeeUserError)) for r in results), results
        assert all(isinstance(r, DocFeatures) for r in results[-len(good):])
    assert refused > 200  # most mutations are refused by the reader; the rest featurize or are user errors


def test_fuzzed_documents_in_one_served_batch_fail_alone(server, model_files):
    """60 mutated documents sent concurrently with good ones: every good one is served, every failure is a
    400-class answer (never a 500: nothing escapes the preprocess model)."""
    from paee.serving.client import PaeeClient, PaeeServingError

    good = [d.to_json() for d in model_files["docs"][:2]]
    payloads = _fuzz_texts(good, 60, seed=81)
    mixed = [p for i, p in enumerate(payloads) for p in ([p, json.dumps(good[i % 2])] if i % 3 == 0 else [p])]
    with PaeeClient(server.http_url, timeout_s=120, retries=0) as client:
        results = client.predict_many(mixed, concurrency=8, return_exceptions=True)
    statuses = {r.status for r in results if isinstance(r, PaeeServingError)}
    assert statuses <= {"400"}, [str(r) for r in results if isinstance(r, PaeeServingError) and r.status != "400"][:3]
    good_texts = {json.dumps(g) for g in good}
    assert all(not isinstance(r, Exception) for p, r in zip(mixed, results) if p in good_texts)


def test_scratch_folders_of_a_killed_job_are_swept_by_the_next(tmp_path):
    """A job killed outright cannot remove its scratch folder (paee-export's work folder, the repository's
    hidden .tmp); the next job of the same kind removes those whose process is gone, and no other."""
    import subprocess
    import sys

    from paee.data.jsonio import scratch_dir

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    stale = tmp_path / f".repo.tmp-{dead_pid}-abcd"
    (stale / "paee").mkdir(parents=True)
    running = tmp_path / f".repo.tmp-{os.getpid()}-efgh"  # a job still at work (this process)
    running.mkdir()
    other = tmp_path / f".other.tmp-{dead_pid}-ijkl"  # another prefix is not this job's business
    other.mkdir()
    fresh = scratch_dir(".repo.tmp-", tmp_path)
    assert fresh.name.startswith(f".repo.tmp-{os.getpid()}-") and fresh.is_dir()
    assert not stale.exists() and running.exists() and other.exists()
