"""`paee-serve REPO [--http-port] [--grpc-port] [--metrics-port]`: run Triton on a PAEE model repository.

Starts ``tritonserver`` (from PATH or the nvidia-pytriton wheel, see `paee.serving.server`) on loopback,
waits until every model is ready, prints the endpoints and serves until SIGINT / SIGTERM, then stops
the server cleanly (SIGTERM, then SIGKILL after a grace period).

While serving it watches the server every second: a tritonserver that exits ends paee-serve (exit status 1),
and a python backend stub that dies (killed, out of memory) -- which Triton does not recover from while its
health endpoints keep answering ready -- makes paee-serve restart tritonserver on the same ports (or, with
``--no-restart``, stop with exit status 1 so that an orchestrator restarts it). During a restart the health
endpoints refuse connections, so a readiness probe of ``/v2/health/ready`` reports it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from paee.errors import report
from paee.serving.server import (
    DEFAULT_GRPC_PORT, DEFAULT_HOST, DEFAULT_HTTP_PORT, DEFAULT_METRICS_PORT, DEFAULT_READY_TIMEOUT_S,
    TritonServer, TritonServerError,
)


#: How often the server process and its backend stubs are checked.
WATCH_INTERVAL_S = 1.0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paee-serve", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("repository", type=Path, help="Triton model repository (paee-export output)")
    p.add_argument("--http-port", type=int, default=DEFAULT_HTTP_PORT, help="0 picks a free port")
    p.add_argument("--grpc-port", type=int, default=DEFAULT_GRPC_PORT, help="0 picks a free port")
    p.add_argument("--metrics-port", type=int, default=DEFAULT_METRICS_PORT, help="0 picks a free port")
    p.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default: loopback only)")
    p.add_argument("--ready-timeout", type=float, default=DEFAULT_READY_TIMEOUT_S, help="seconds to wait for readiness")
    p.add_argument("--log-verbose", type=int, default=0, help="tritonserver --log-verbose level")
    p.add_argument("--log-file", type=Path, default=None, help="server log (default: a temporary file)")
    p.add_argument("--no-restart", action="store_true",
                   help="when a backend stub dies, stop (exit status 1) instead of restarting tritonserver")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server = TritonServer(
            args.repository, http_port=args.http_port, grpc_port=args.grpc_port, metrics_port=args.metrics_port,
            host=args.host, ready_timeout_s=args.ready_timeout, log_verbose=args.log_verbose, log_path=args.log_file,
        )
        with server:
            print(f"paee-serve: ready (pid {server.pid}), model repository {server.model_repository}")
            print(f"  HTTP    {server.http_url}")
            print(f"  gRPC    {server.grpc_url}")
            print(f"  metrics {server.metrics_url}")
            print(f"  log     {server.log_path}")
            sys.stdout.flush()
            while not stop.wait(WATCH_INTERVAL_S):
                if server._process is None or server._process.poll() is not None:
                    return report(TritonServerError(f"tritonserver exited unexpectedly; log tail:\n{server.log_tail()}"))
                dead = server.dead_stubs()
                if dead:
                    if args.no_restart:
                        return report(TritonServerError(f"backend stub(s) {', '.join(dead)} died; stopping (--no-restart)"))
                    print(f"paee-serve: backend stub(s) {', '.join(dead)} died; restarting tritonserver", flush=True)
                    server.restart()
                    print(f"paee-serve: ready again (pid {server.pid}, restart {server.restarts})", flush=True)
            print("paee-serve: stopping", flush=True)
        return 0
    except TritonServerError as e:
        return report(e)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


if __name__ == "__main__":
    sys.exit(main())
