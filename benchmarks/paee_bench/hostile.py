"""Hostile requests mixed into a good load: does one bad request fail others?

`HOSTILE` is the table of bad payloads a probe sent to the served ensemble (each valid enough to reach the
preprocess model, each once crashing it). `mixed_load` runs ``clients`` threads that send good documents
while ``hostile_clients`` threads stream every hostile kind round-robin, all through `PaeeClient` (HTTP or
gRPC), so that bad and good requests share Triton's dynamic batches. The report counts good requests that
failed (the figure that must be 0), and per hostile kind its status codes and distinct messages (each must
be a one-line 400-class answer).

Used by tests/test_reliability.py (a small run) and benchmarks/hostile_load.py (the issue's figures).
"""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from paee.serving.client import PaeeClient, PaeeServingError, encode_document


def _doc(title: str, word: str = '"Alice"', number: str = "0") -> bytes:
    """A DocRED-form document with two entities; ``word`` / ``title`` / ``number`` are pasted into the JSON
    text as they are (escapes, literals), so they reach the server's parser untouched."""
    return (
        '{"title": %s, "sents": [[%s, "met", "Bob", "."]], "vertexSet": ['
        '[{"name": "Alice", "sent_id": %s, "pos": [0, 1], "type": "PER"}], '
        '[{"name": "Bob", "sent_id": 0, "pos": [2, 3], "type": "PER"}]]}' % (title, word, number)
    ).encode("utf-8")


#: kind -> payload. The first four once escaped the preprocess model's ``execute`` (issue 18) and failed
#: their whole dynamic batch; the last two are plain bad documents for comparison.
HOSTILE: dict[str, bytes] = {
    "deep nesting": b"[" * 10_000 + b"]" * 10_000,
    "5,000-digit integer": _doc('"big"', number="9" * 5_000),
    "lone surrogate in a word": _doc('"surrogate word"', word='"\\ud800"'),
    "lone surrogate in the title": _doc('"\\udfff"'),
    "NaN sentence id": _doc('"nan"', number="NaN"),
    "invalid JSON": b'{"title": "x", "sents": [',
}
#: kind -> what its served error message says.
HOSTILE_MESSAGES: dict[str, str] = {
    "deep nesting": "nested too deeply",
    "5,000-digit integer": "a number in the JSON is too long to read",
    "lone surrogate in a word": "field 'sents[0][0]': the string holds a lone surrogate",
    "lone surrogate in the title": "field 'title': the string holds a lone surrogate",
    "NaN sentence id": "field 'vertexSet[0][0].sent_id': expected a sentence index (integer), got a number",
    "invalid JSON": "invalid JSON",
}


@dataclass
class MixedLoadReport:
    """What a mixed run saw."""

    good_sent: int = 0
    good_failed: int = 0
    good_errors: list[str] = field(default_factory=list)
    hostile_sent: int = 0
    #: kind -> Counter of statuses (``"400"``, ``"StatusCode.INVALID_ARGUMENT"``, ``"ok"`` when served)
    hostile_status: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    #: kind -> distinct messages
    hostile_messages: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def to_json(self) -> dict[str, Any]:
        return {
            "good_sent": self.good_sent, "good_failed": self.good_failed, "good_errors": self.good_errors[:5],
            "hostile_sent": self.hostile_sent,
            "hostile": {k: {"status": dict(self.hostile_status[k]), "messages": sorted(self.hostile_messages[k])[:3]}
                        for k in self.hostile_status},
        }


def mixed_load(
    url: str,
    protocol: str,
    good: Sequence[Any],
    *,
    clients: int = 16,
    good_per_client: int = 10,
    hostile: Mapping[str, bytes] = HOSTILE,
    hostile_clients: int = 4,
    hostile_per_kind: int = 10,
    timeout_s: float = 120.0,
) -> MixedLoadReport:
    """Run good and hostile clients at once (see the module docstring); returns the `MixedLoadReport`."""
    report = MixedLoadReport()
    lock = threading.Lock()
    payloads = [encode_document(d) for d in good]
    stream = [(kind, payload) for _ in range(hostile_per_kind) for kind, payload in hostile.items()]

    def good_client(c: int) -> None:
        with PaeeClient(url, protocol, timeout_s=timeout_s, retries=0) as client:
            for k in range(good_per_client):
                try:
                    client.predict_raw(payloads[(c + k) % len(payloads)])
                    error = None
                except PaeeServingError as e:
                    error = str(e)
                with lock:
                    report.good_sent += 1
                    if error is not None:
                        report.good_failed += 1
                        report.good_errors.append(error)

    def hostile_client(h: int) -> None:
        with PaeeClient(url, protocol, timeout_s=timeout_s, retries=0) as client:
            for kind, payload in stream[h::hostile_clients]:
                try:
                    client.predict_raw(payload)
                    status, message = "ok", None
                except PaeeServingError as e:
                    status, message = getattr(e, "status", None) or "unreached", str(e)
                with lock:
                    report.hostile_sent += 1
                    report.hostile_status[kind][status] += 1
                    if message is not None:
                        report.hostile_messages[kind].add(message)

    threads = [threading.Thread(target=good_client, args=(c,)) for c in range(clients)]
    threads += [threading.Thread(target=hostile_client, args=(h,)) for h in range(hostile_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return report


def summary(report: MixedLoadReport) -> str:
    return json.dumps(report.to_json(), indent=1, ensure_ascii=False)
