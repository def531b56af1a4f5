"""Client of the PAEE Triton ensemble: documents in, relation triples out, over HTTP or gRPC.

`PaeeClient.predict(doc)` sends ONE document (a `Document`, a parsed JSON dict, or JSON text/bytes) as
the ensemble's ``DOCUMENT`` input (TYPE_STRING, shape [1, 1]) and returns the ``triples`` list of the
``TRIPLES`` JSON: ``{h_idx, t_idx, r, r_name, score}`` per predicted relation. `predict_many` sends
documents concurrently from a thread pool, so the server's dynamic batcher can batch them.

Retries: only connection-level failures (server starting, restarted, connection reset) are retried,
with a short back-off; an error *response* (a bad document, a server-side failure) is never retried
and raises `PaeeServingError` carrying the server's message. No torch import on this path.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from paee.data.decode import select_fields
from paee.data.schema import Document
from paee.errors import PaeeFailure, PaeeUserError

MODEL_NAME = "paee"
INPUT_NAME = "DOCUMENT"
OUTPUT_NAME = "TRIPLES"
PROTOCOLS = ("http", "grpc")
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_RETRIES = 3
DEFAULT_CONCURRENCY = 4
#: First back-off between retries; doubled after each attempt.
RETRY_BACKOFF_S = 0.5
#: gRPC's default message limit is 4 MiB; documents may be larger (the server decides what it accepts).
GRPC_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class PaeeServingError(PaeeFailure):
    """The server answered with an error (message passed on) or could not be reached after retries.

    ``status`` is the server's status as tritonclient reports it (HTTP ``"400"``, gRPC
    ``"StatusCode.INVALID_ARGUMENT"``; None when the server was not reached)."""

    def __init__(self, message: str, status: str | None = None):
        super().__init__(message)
        self.status = status


def encode_document(doc: Document | Mapping[str, Any] | str | bytes, options: Mapping[str, Any] | None = None) -> bytes:
    """The DOCUMENT payload: UTF-8 JSON of one document (bytes and text are sent as they are), with the
    request ``options`` (e.g. ``{"truncate": True}``) added to a document given as an object."""
    if isinstance(doc, bytes):
        return doc
    if isinstance(doc, str):
        return doc.encode("utf-8")
    if isinstance(doc, Document):
        doc = doc.to_json()
    if options:
        doc = {**doc, "options": dict(options)}
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def _is_connection_error(error: BaseException) -> bool:
    """Connection-level failures (retryable) as opposed to error responses of the server."""
    if isinstance(error, (ConnectionError, TimeoutError, OSError)):
        return True
    try:
        import grpc

        if isinstance(error, grpc.RpcError) and error.code() in (grpc.StatusCode.UNAVAILABLE,):
            return True
    except ImportError:
        pass
    from tritonclient.utils import InferenceServerException

    if isinstance(error, InferenceServerException):
        status = str(error.status() or "")
        # gRPC: StatusCode.UNAVAILABLE when the server is not (yet) reachable.
        return "UNAVAILABLE" in status
    # geventhttpclient / urllib3 raise their own connection errors (subclasses of OSError in most versions)
    return type(error).__name__ in ("ConnectionRefusedError", "ConnectionResetError", "NewConnectionError")


class PaeeClient:
    """Query the ``paee`` ensemble of a Triton server.

    Args:
        url: ``host:port`` of the server's HTTP or gRPC endpoint.
        protocol: ``http`` or ``grpc``.
        timeout_s: network timeout per request.
        retries: extra attempts after a connection error (error responses are never retried).
        concurrency: default number of requests in flight in `predict_many`.
        model_name: the ensemble's name.
    """

    def __init__(
        self,
        url: str,
        protocol: str = "http",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
        concurrency: int = DEFAULT_CONCURRENCY,
        model_name: str = MODEL_NAME,
        truncate: bool = False,
    ):
        if protocol not in PROTOCOLS:
            raise PaeeUserError(f"protocol {protocol!r} is not one of {PROTOCOLS}")
        if retries < 0 or concurrency < 1:
            raise PaeeUserError(f"retries must be >= 0 and concurrency >= 1, got {retries}, {concurrency}")
        self.url = url.removeprefix("http://").removeprefix("https://")
        self.protocol = protocol
        self.timeout_s = timeout_s
        self.retries = retries
        self.concurrency = concurrency
        self.model_name = model_name
        # documents over the server's max_length: cut (the response lists the lost mentions) instead of refused
        self.options = {"truncate": True} if truncate else {}
        if protocol == "http":
            import tritonclient.http as module
        else:
            import tritonclient.grpc as module  # type: ignore[no-redef]
        self._module = module
        self._client = self._new_client(concurrency)
        # tritonclient's clients are not documented thread-safe: one per worker thread of predict_many.
        self._local = threading.local()
        self._local.client = self._client
        self._extra_clients: list[Any] = []
        self._lock = threading.Lock()

    def _new_client(self, concurrency: int) -> Any:
        if self.protocol == "http":
            # concurrency = size of the connection pool, so threads do not queue on one connection
            return self._module.InferenceServerClient(
                self.url, concurrency=concurrency, connection_timeout=self.timeout_s, network_timeout=self.timeout_s,
            )
        options = [("grpc.max_send_message_length", GRPC_MAX_MESSAGE_BYTES),
                   ("grpc.max_receive_message_length", GRPC_MAX_MESSAGE_BYTES)]
        return self._module.InferenceServerClient(self.url, channel_args=options)

    def _thread_client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._new_client(1)
            with self._lock:
                self._extra_clients.append(client)
        return client

    def triton_client(self) -> Any:
        """This thread's tritonclient (HTTP or gRPC), for the server's other endpoints (statistics, metadata)."""
        return self._thread_client()

    def close(self) -> None:
        for client in [self._client, *self._extra_clients]:
            client.close()
        self._extra_clients = []

    def __enter__(self) -> PaeeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def is_ready(self) -> bool:
        """Server and ensemble ready (False when unreachable)."""
        try:
            return bool(self._client.is_server_ready() and self._client.is_model_ready(self.model_name))
        except Exception:
            return False

    def _infer(self, payload: bytes) -> bytes:
        tensor = self._module.InferInput(INPUT_NAME, [1, 1], "BYTES")
        tensor.set_data_from_numpy(np.array([[payload]], dtype=np.object_))
        output = self._module.InferRequestedOutput(OUTPUT_NAME)
        # HTTP: the timeouts live on the connection pool; gRPC: a deadline per call.
        kwargs = {} if self.protocol == "http" else {"client_timeout": self.timeout_s}
        result = self._thread_client().infer(self.model_name, [tensor], outputs=[output], **kwargs)
        return result.as_numpy(OUTPUT_NAME).reshape(-1)[0]

    def predict_raw(self, doc: Document | Mapping[str, Any] | str | bytes) -> dict[str, Any]:
        """The TRIPLES JSON of one document: ``{"title": ..., "triples": [...]}``; for plain text ``{"title",
        "text"}`` sent to a repository exported with a detector, also ``"entities"`` (each named, with its
        mentions) and ``"detection"``, and each triple's ``h_name`` / ``t_name``."""
        from tritonclient.utils import InferenceServerException

        payload = encode_document(doc, self.options)
        delay = RETRY_BACKOFF_S
        for attempt in range(self.retries + 1):
            try:
                raw = self._infer(payload)
                break
            except Exception as e:
                if _is_connection_error(e) and attempt < self.retries:
                    time.sleep(delay)
                    delay *= 2
                    continue
                if isinstance(e, InferenceServerException):
                    raise PaeeServingError(e.message() or str(e), str(e.status() or "") or None) from e
                raise PaeeServingError(f"cannot reach {self.protocol}://{self.url}: {e}") from e
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        return json.loads(text)

    def predict(self, doc: Document | Mapping[str, Any] | str | bytes) -> list[dict[str, Any]]:
        """Triples ``{h_idx, t_idx, r, r_name, score, evidence}`` of one document."""
        return self.predict_raw(doc)["triples"]

    def predict_many(
        self, docs: Sequence[Document | Mapping[str, Any] | str | bytes], concurrency: int | None = None,
        return_exceptions: bool = False, whole: bool = False,
    ) -> list[Any]:
        """`predict` for many documents, ``concurrency`` in flight, results in input order.

        With ``return_exceptions`` a failed document yields its `PaeeServingError` instead of raising; with
        ``whole`` each result is the whole response (`predict_raw`: title, triples, warnings) instead of its triples.
        """
        workers = concurrency or self.concurrency
        call = self.predict_raw if whole else self.predict

        def one(doc: Any) -> Any:
            try:
                return call(doc)
            except PaeeServingError as e:
                if return_exceptions:
                    return e
                raise

        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, docs))


def result_records(title: str, triples: Sequence[Mapping[str, Any]], with_names: bool = True,
                   with_scores: bool = True) -> list[dict[str, Any]]:
    """Official DocRED ``result.json`` records ``{title, h_idx, t_idx, r, evidence}`` (+ r_name, score) of served
    triples."""
    return [select_fields({"title": title, **t}, with_names, with_scores) for t in triples]
