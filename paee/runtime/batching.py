"""What the Triton python models share: their declared I/O, and group-run-split for the graph runners.

Triton hands a python model's ``execute`` a list of requests, each carrying its own batch of documents.
`run_by_length` groups the requests' inputs by padded length L (the preprocess model pads to length
buckets), concatenates each group along the batch axis, runs it once and splits the outputs back per
request; a failure fails only the requests of its group. Tensors with a pair axis (the contract's
`RAGGED`: a document's pairs, axis 1) may differ between requests of a group (the head's config allows
ragged batches there): they are padded to the group's most pairs as `collate` pads them (zeros: pair
(0, 0), mask 0), and the outputs on that axis are cut back to each request's own count.
`execute_by_length` wraps it in Triton's request/response objects.

`ModelIO` reads a python model's inputs and output dtypes from the config Triton hands ``initialize``
(the config is generated from the tensor contract, so the models never list tensors themselves).

Numpy only (no Triton import, never torch): the Triton module ``triton_python_backend_utils`` is passed
in by the model, so that `run_by_length` can be tested without a server.
"""

from __future__ import annotations

import functools
import json
import traceback
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paee.errors import PaeeUserError
from paee.runtime.contract import RAGGED

#: Runs one group: (padded length L, inputs concatenated along the batch axis) -> outputs by name.
GroupRunner = Callable[[int, dict[str, np.ndarray]], Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class ModelIO:
    """A python model's inputs and outputs as its ``config.pbtxt`` declares them, and its version folder."""

    input_names: list[str]
    output_dtypes: dict[str, np.dtype]
    version_dir: Path

    @classmethod
    def from_args(cls, args: Mapping[str, str], pb_utils: Any) -> ModelIO:
        """From the ``args`` of ``TritonPythonModel.initialize``."""
        config = json.loads(args["model_config"])
        return cls(
            input_names=[i["name"] for i in config.get("input", [])],
            output_dtypes={o["name"]: pb_utils.triton_string_to_numpy(o["data_type"]) for o in config.get("output", [])},
            version_dir=Path(args["model_repository"]) / args["model_version"],
        )


@dataclass(frozen=True)
class GroupFailure:
    """The group of padded length ``length`` failed with ``error`` (every request of the group gets it)."""

    length: int
    error: BaseException

    def message(self, model: str) -> str:
        return f"{model}: batch of padded length {self.length} failed: {self.error}"


def error_message(model: str, error: BaseException) -> str:
    """The one line a client reads for a failed request: a user error's own message (it names the document
    and the field), anything else ``model: internal error (TypeName: first line)`` -- never a traceback or a
    server path."""
    if isinstance(error, PaeeUserError):
        return str(error)
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{model}: internal error ({type(error).__name__}{': ' + first if first else ''}; see the server log)"


def error_response(pb_utils: Any, model: str, error: BaseException) -> Any:
    """The `InferenceResponse` of one failed request: the caller's input at fault (`PaeeUserError`) is
    ``INVALID_ARG`` (HTTP 400, gRPC INVALID_ARGUMENT); anything else is ``INTERNAL`` (HTTP 500), and its
    traceback goes to the server log only. Counted in `FAILURE_METRIC`."""
    if isinstance(error, PaeeUserError):
        code, code_name = pb_utils.TritonError.INVALID_ARG, "INVALID_ARG"
    else:
        code, code_name = pb_utils.TritonError.INTERNAL, "INTERNAL"
        pb_utils.Logger.log_error(f"{model}: {''.join(traceback.format_exception(error))}")
    _count_failure(pb_utils, model, code_name)
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(error_message(model, error), code))


#: Prometheus counter (Triton's metrics port) of the requests a python model answered with an error response,
#: labelled by model and code. Triton's python backend counts such a request as a *success* of the model in
#: its own statistics (``nv_inference_request_success``: ``execute`` returned), so this is the per-model count.
FAILURE_METRIC = "paee_request_failure"


def _count_failure(pb_utils: Any, model: str, code_name: str) -> None:
    family_type = getattr(pb_utils, "MetricFamily", None)  # Triton's custom metrics (23.05 and later)
    if family_type is None:
        return
    try:
        _failure_counter(family_type, model, code_name).increment(1)
    except Exception as e:  # noqa: BLE001  # counting must never cost the caller its answer
        pb_utils.Logger.log_warn(f"{model}: could not count a failed request in {FAILURE_METRIC}: {e}")


@functools.cache
def _failure_family(family_type: Any) -> Any:
    return family_type(name=FAILURE_METRIC, kind=family_type.COUNTER,
                       description="requests a PAEE python model answered with an error response, by model and code")


@functools.cache
def _failure_counter(family_type: Any, model: str, code_name: str) -> Any:
    return _failure_family(family_type).Metric(labels={"model": model, "code": code_name})


def _pad_axis1(values: Sequence[np.ndarray], size: int) -> list[np.ndarray]:
    """Zero-pad axis 1 of every array to ``size``."""
    return [np.pad(v, [(0, 0), (0, size - v.shape[1])] + [(0, 0)] * (v.ndim - 2)) for v in values]


def run_by_length(
    feeds: Sequence[Mapping[str, np.ndarray]],
    length_input: str,
    run: GroupRunner,
    output_names: Sequence[str],
    ragged: Sequence[str] = RAGGED,
) -> list[dict[str, np.ndarray] | GroupFailure]:
    """Run requests grouped by padded length; per request its outputs, or the `GroupFailure` of its group.

    Args:
        feeds: per request, its inputs by name (each [B_i, ...]); all requests have the same names.
        length_input: the input whose axis 1 is the padded length L (e.g. ``input_ids`` [B_i, L]).
        run: runs one group (see `GroupRunner`); its outputs have the group's total batch on axis 0.
        output_names: the outputs to split back (every one must be in ``run``'s result).
        ragged: tensors whose axis 1 may differ between requests (inputs padded, outputs cut back).

    Returns:
        One entry per request, in request order: ``{name: [B_i, ...]}`` (contiguous) or a `GroupFailure`.
    """
    results: list[dict[str, np.ndarray] | GroupFailure | None] = [None] * len(feeds)
    groups: dict[int, list[int]] = defaultdict(list)  # L -> request indices
    for r, inputs in enumerate(feeds):
        groups[int(inputs[length_input].shape[1])].append(r)
    for length, members in groups.items():
        try:
            names = feeds[members[0]].keys()
            batch = {}
            for n in names:  # [sum B_i, ...]
                parts = [feeds[r][n] for r in members]
                if n in ragged:
                    parts = _pad_axis1(parts, max(p.shape[1] for p in parts))
                batch[n] = np.concatenate(parts)
            own = {r: next((feeds[r][n].shape[1] for n in ragged if n in names), None) for r in members}
            outputs = run(length, batch)
            size = batch[length_input].shape[0]
            wrong = {n: outputs[n].shape[0] for n in output_names if outputs[n].shape[0] != size}
            if wrong:
                raise ValueError(f"outputs {wrong} do not have the batch size {size} of the inputs")
            start = 0
            for r in members:
                stop = start + feeds[r][length_input].shape[0]
                results[r] = {n: np.ascontiguousarray(outputs[n][start:stop, : own[r]] if n in ragged else
                                                      outputs[n][start:stop]) for n in output_names}
                start = stop
        except Exception as e:  # a runtime failure fails this group's requests, never the server
            for r in members:
                results[r] = GroupFailure(length, e)
    return results  # type: ignore[return-value]


def execute_by_length(
    pb_utils: Any,
    requests: Sequence[Any],
    *,
    model: str,
    io: ModelIO,
    length_input: str,
    run: GroupRunner,
) -> list[Any]:
    """A python model's ``execute``: exactly one `InferenceResponse` per request, errors per group.

    Args:
        pb_utils: the ``triton_python_backend_utils`` module of the running model.
        requests: Triton's requests.
        model: the model's name, for error messages and the server log.
        io: the model's inputs (read from each request) and outputs (in config order, with dtypes).
        length_input, run: see `run_by_length`.
    """
    feeds = [{n: pb_utils.get_input_tensor_by_name(request, n).as_numpy() for n in io.input_names} for request in requests]
    output_dtypes = io.output_dtypes
    responses = []
    for result in run_by_length(feeds, length_input, run, list(output_dtypes)):
        if isinstance(result, GroupFailure):
            message = result.message(model)
            pb_utils.Logger.log_error(message)
            responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(message)))
            continue
        tensors = [pb_utils.Tensor(n, result[n].astype(dtype, copy=False)) for n, dtype in output_dtypes.items()]
        responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
    return responses
