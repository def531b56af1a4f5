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
    from paee_bench.hostile import HOSTILE, mixed_load

    url = server.http_url if protocol == "http" else server.grpc_url
    report = mixed_load(url, protocol, model_files["docs"], clients=16, good_per_client=3,
                        hostile_clients=4, hostile_per_kind=2)
    assert report.good_sent == 48 and report.good_failed == 0, report.good_errors[:3]
    assert set(report.hostile_status) == set(HOSTILE)
    for kind, statuses in report.hostile_status.items():
        assert dict(statuses) == {CLIENT_ERROR[protocol]: 2}, (kind, dict(statuses), report.hostile_messages[kind])
        for message in report.hostile_messages[kind]:
            assert "\n" not in message and "Traceback" not in message and "/1/model.py" not in message, message
            assert "document 0" in message, message
    assert "lone surrogate" in next(iter(report.hostile_messages["lone surrogate in a word"]))
    assert "sents[0][0]" in next(iter(report.hostile_messages["lone surrogate in a word"]))
    assert "nested too deeply" in next(iter(report.hostile_messages["deep nesting"]))
