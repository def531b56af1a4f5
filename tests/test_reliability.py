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
