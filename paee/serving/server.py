"""Run a real Triton Inference Server without Docker, from the ``nvidia-pytriton`` wheel.

The PyPI wheel ``nvidia-pytriton`` carries a ``tritonserver`` binary (Triton 2.51, CPU-only here) with the
python backend and the ensemble scheduler (DESIGN.md 7). Using it outside pytriton takes four steps that
`TritonServer` does for you:

1. find ``tritonserver``: on ``PATH`` first, else ``site-packages/pytriton/tritonserver/bin/``;
2. build a private backend directory (a temporary folder): a copy of the wheel's ``backends/python``
   plus the python backend stub for the *running* Python version (the wheel ships one stub per
   Python version under ``python_backend_stubs/<major.minor>/``; the server looks for the stub next to
   ``libtriton_python.so``). Copies, not edits: the installed wheel is never modified;
3. environment: ``LD_LIBRARY_PATH`` gets the wheel's ``nvidia_pytriton.libs`` (the copied stub loses its
   relative RPATH) and the running interpreter's ``libpython`` directory (so the stub embeds the same
   Python build as this environment). The stub initialises Python in *isolated* mode (``sys.flags.isolated``:
   ``PYTHONPATH`` and ``sitecustomize`` on it are ignored) and with the program name ``python3``, which
   the embedded interpreter looks up on ``PATH`` to compute ``sys.prefix``. So ``PATH`` starts with the
   folder of the running interpreter: from a virtualenv, the stub then finds ``pyvenv.cfg``, gets the
   virtualenv's ``sys.prefix`` and its site-packages with their ``.pth`` files (editable installs of
   ``paee`` and ``paee_export``) -- whether or not the virtualenv was activated;
4. start it on 127.0.0.1 with explicit ports, poll readiness (server and every model) with a timeout,
   and stop it with SIGTERM, then SIGKILL after a grace period.

Usage::

    with TritonServer("repo", http_port=8000, grpc_port=8001, metrics_port=8002) as server:
        print(server.http_url, server.grpc_url)
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from paee.errors import PaeeFailure

#: Loopback only: the servers this module starts are never reachable from other machines.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_HTTP_PORT = 8000
DEFAULT_GRPC_PORT = 8001
DEFAULT_METRICS_PORT = 8002
#: Loading python models (each starts a stub process and imports numpy/tokenizers/onnxruntime) takes
#: several seconds per instance on a shared 2-core machine.
DEFAULT_READY_TIMEOUT_S = 180.0
#: Time SIGTERM gets before SIGKILL; Triton waits for in-flight requests and unloads models on SIGTERM.
DEFAULT_STOP_TIMEOUT_S = 30.0
#: How often readiness is polled.
POLL_INTERVAL_S = 0.5
#: Lines of the server log quoted in errors.
LOG_TAIL_LINES = 40

TRITONSERVER_BINARY = "tritonserver"
PYTHON_BACKEND = "python"
PYTHON_STUB = "triton_python_backend_stub"
#: Folder of the pytriton package that holds the server distribution.
PYTRITON_DIST = "tritonserver"
#: Folder beside the ``pytriton`` package with the wheel's bundled shared libraries (auditwheel layout).
PYTRITON_LIBS = "nvidia_pytriton.libs"
#: Where the python models' bytecode caches appear in a repository while it is served.
PYCACHE_GLOB = "*/*/__pycache__"
#: Position of the model instance name (``paee_encoder_0_0``) in a stub's command line.
STUB_INSTANCE_ARG = 8
#: The program name the stub's embedded Python searches on PATH to find its prefix.
STUB_PROGRAM_NAME = "python3"


class TritonServerError(PaeeFailure):
    """tritonserver cannot be found, set up, started, or did not become ready (message holds the log tail)."""


@dataclass(frozen=True)
class TritonInstallation:
    """Where the pieces of a Triton server distribution are.

    Attributes:
        binary: the ``tritonserver`` executable.
        python_backend: folder with ``libtriton_python.so`` (and possibly a stub).
        stub: the python backend stub matching the running Python version (None: the backend folder has one).
        libs: extra shared-library folders for ``LD_LIBRARY_PATH``.
    """

    binary: Path
    python_backend: Path
    stub: Path | None
    libs: tuple[Path, ...]


def _pytriton_root() -> Path | None:
    """The installed ``pytriton`` package folder, found without importing it (its import is heavy)."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def find_triton() -> TritonInstallation:
    """Locate tritonserver: ``PATH`` first (e.g. NVIDIA's container, /opt/tritonserver), else the pytriton wheel."""
    python_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    on_path = shutil.which(TRITONSERVER_BINARY)
    if on_path:
        binary = Path(on_path).resolve()
        # NVIDIA's layout: /opt/tritonserver/bin/tritonserver beside /opt/tritonserver/backends/python
        backend = binary.parent.parent / "backends" / PYTHON_BACKEND
        if backend.is_dir():
            return TritonInstallation(binary, backend, None, ())
    root = _pytriton_root()
    if root is None:
        raise TritonServerError(
            "tritonserver is not on PATH and the 'nvidia-pytriton' package is not installed "
            "(pip install 'paee[serve]' or 'nvidia-pytriton')"
        )
    dist = root / PYTRITON_DIST
    binary = dist / "bin" / TRITONSERVER_BINARY
    backend = dist / "backends" / PYTHON_BACKEND
    stub = dist / "python_backend_stubs" / python_version / PYTHON_STUB
    for path, what in ((binary, "tritonserver binary"), (backend, "python backend"), (stub, "python backend stub")):
        if not path.exists():
            known = sorted(p.name for p in (dist / "python_backend_stubs").glob("*") if p.is_dir())
            raise TritonServerError(
                f"the pytriton wheel at {root} has no {what} at {path} "
                f"(stubs exist for Python {', '.join(known) or 'none'}; running Python {python_version})"
            )
    libs = root.parent / PYTRITON_LIBS
    return TritonInstallation(binary, backend, stub, (libs,) if libs.is_dir() else ())


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port that is free right now (the kernel's choice); racy by nature, fine for tests."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port_free(host: str, port: int) -> bool:
    """Whether ``port`` on ``host`` can be bound right now (as tritonserver will bind it: SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _interpreter_bin_dir(workdir: Path) -> str:
    """A folder whose ``python3`` is the running interpreter, to put first on the stub's ``PATH``.

    The interpreter's own folder when it has a ``python3`` (every virtualenv does; its ``pyvenv.cfg`` must
    be found beside the unresolved path, so no symlink elsewhere would do); otherwise a private folder
    with a ``python3`` symlink to ``sys.executable``.
    """
    own = Path(sys.executable).parent
    if (own / STUB_PROGRAM_NAME).exists() and (own / STUB_PROGRAM_NAME).resolve() == Path(sys.executable).resolve():
        return str(own)
    private = workdir / "bin"
    private.mkdir(exist_ok=True)
    (private / STUB_PROGRAM_NAME).symlink_to(Path(sys.executable).resolve())
    return str(private)


def _libpython_dir() -> str | None:
    """Folder of the running interpreter's shared libpython, if it has one."""
    libdir = sysconfig.get_config_var("LIBDIR")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if libdir and any(Path(libdir).glob(f"libpython{version}*.so*")):
        return str(libdir)
    return None


class TritonServer:
    """A ``tritonserver`` process serving one model repository on loopback.

    Args:
        model_repository: the repository folder (e.g. written by `paee_export.repository.write_repository`).
        http_port, grpc_port, metrics_port: ports on ``host``; 0 picks a free one.
        host: address to bind (loopback by default).
        ready_timeout_s: how long `start` waits for the server and every model to be ready.
        stop_timeout_s: grace period between SIGTERM and SIGKILL.
        log_verbose: Triton's ``--log-verbose`` level.
        extra_args: more command-line arguments for tritonserver.
        log_path: where the server's stdout/stderr go (default: a file in the private work folder).
    """

    def __init__(
        self,
        model_repository: str | Path,
        *,
        http_port: int = DEFAULT_HTTP_PORT,
        grpc_port: int = DEFAULT_GRPC_PORT,
        metrics_port: int = DEFAULT_METRICS_PORT,
        host: str = DEFAULT_HOST,
        ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
        stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S,
        log_verbose: int = 0,
        extra_args: Sequence[str] = (),
        log_path: str | Path | None = None,
    ):
        self.model_repository = Path(model_repository).resolve()
        if not self.model_repository.is_dir():
            raise TritonServerError(f"model repository {self.model_repository} is not a directory")
        self.host = host
        taken = {http_port, grpc_port, metrics_port} - {0}

        def pick(port: int) -> int:  # free_port may hand out the same port twice: keep the three distinct
            while not port:
                port = free_port(host)
                port = 0 if port in taken else port
            taken.add(port)
            return port

        self.http_port = pick(http_port)
        self.grpc_port = pick(grpc_port)
        self.metrics_port = pick(metrics_port)
        self.ready_timeout_s = ready_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.log_verbose = log_verbose
        self.extra_args = list(extra_args)
        self._log_path_arg = Path(log_path) if log_path else None
        self._workdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file = None
        self._caches_before: set[Path] = set()
        self._stubs: dict[int, str] = {}
        self.log_path: Path | None = None
        self.restarts = 0

    # --- endpoints ------------------------------------------------------------------------------

    @property
    def http_url(self) -> str:
        return f"{self.host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}/metrics"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    # --- lifecycle ------------------------------------------------------------------------------

    def _prepare(self, install: TritonInstallation) -> tuple[Path, dict[str, str]]:
        """Private backend folder and environment (see the module docstring, steps 2 and 3)."""
        self._workdir = Path(tempfile.mkdtemp(prefix="paee-triton-"))
        backends = self._workdir / "backends"
        python_backend = backends / PYTHON_BACKEND
        shutil.copytree(install.python_backend, python_backend, ignore=shutil.ignore_patterns("__pycache__"))
        if install.stub is not None:
            shutil.copy2(install.stub, python_backend / PYTHON_STUB)
        env = dict(os.environ)
        lib_dirs = [str(p) for p in install.libs]
        libpython = _libpython_dir()
        if libpython:
            lib_dirs.insert(0, libpython)
        if env.get("LD_LIBRARY_PATH"):
            lib_dirs.append(env["LD_LIBRARY_PATH"])
        env["LD_LIBRARY_PATH"] = os.pathsep.join(lib_dirs)
        env["PATH"] = os.pathsep.join([_interpreter_bin_dir(self._workdir), *filter(None, [env.get("PATH")])])
        # The stub's own interpreter must not pick up a foreign PYTHONHOME.
        env.pop("PYTHONHOME", None)
        # Two cores shared with others: keep each runtime from spawning a thread per core per instance.
        env.setdefault("OMP_NUM_THREADS", "1")
        return backends, env

    def command(self, install: TritonInstallation, backend_directory: Path) -> list[str]:
        """The tritonserver command line."""
        return [
            str(install.binary),
            f"--model-repository={self.model_repository}",
            f"--backend-directory={backend_directory}",
            f"--http-address={self.host}",
            f"--http-port={self.http_port}",
            f"--grpc-address={self.host}",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-address={self.host}",
            f"--metrics-port={self.metrics_port}",
            "--allow-gpu-metrics=false",
            f"--log-verbose={self.log_verbose}",
            *self.extra_args,
        ]

    def start(self) -> TritonServer:
        """Start the server and wait until it and all its models are ready; `TritonServerError` otherwise."""
        if self._process is not None:
            raise TritonServerError("this TritonServer is already started")
        busy = [port for port in (self.http_port, self.grpc_port, self.metrics_port) if not _port_free(self.host, port)]
        if busy:  # else another server would answer our readiness probes and we would announce it as ours
            raise TritonServerError(f"port(s) {', '.join(map(str, busy))} on {self.host} are in use "
                                    "(another server running? pick other ports, or 0 for free ones)")
        install = find_triton()
        # the stub imports each python model's model.py from the repository and caches its bytecode there
        # (its embedded interpreter ignores PYTHONDONTWRITEBYTECODE); what serving adds, stopping removes
        self._caches_before = set(self.model_repository.glob(PYCACHE_GLOB))
        backends, env = self._prepare(install)
        assert self._workdir is not None
        self.log_path = self._log_path_arg or self._workdir / "tritonserver.log"
        self._log_file = open(self.log_path, "ab" if self.restarts else "wb")  # a restart keeps the story
        cmd = self.command(install, backends)
        try:
            self._process = subprocess.Popen(
                cmd, stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                cwd=self._workdir,
                # Own process group: a Ctrl-C in the terminal reaches us, and we stop the server in order.
                start_new_session=True,
            )
        except OSError as e:
            self._cleanup()
            raise TritonServerError(f"cannot start {cmd[0]}: {e}") from e
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        self._stubs = self.stub_processes()
        return self

    # --- liveness -------------------------------------------------------------------------------

    def stub_processes(self) -> dict[int, str]:
        """The python backend stubs of this server (its child processes): pid -> model instance name."""
        if self._process is None:
            return {}
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:  # gone meanwhile, or not ours to read
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == self._process.pid and argv[0].endswith(PYTHON_STUB.encode()):
                # argv: stub, model.py, shm region, sizes, parent pid, backend dir, ..., instance name
                found[int(entry.name)] = argv[STUB_INSTANCE_ARG].decode(errors="replace") if len(argv) > STUB_INSTANCE_ARG else "?"
        return found

    def dead_stubs(self) -> list[str]:
        """Instance names of the stubs that were running when the server became ready and are now gone or
        zombies: Triton answers their requests with "Stub process ... is not healthy" while its health
        endpoints keep saying ready, so this is what to watch (`paee-serve` restarts the server)."""
        dead = []
        for pid, name in self._stubs.items():
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                state = "gone"
            if state in ("Z", "X", "gone"):
                dead.append(name)
        return sorted(dead)

    def restart(self) -> TritonServer:
        """Kill and start again on the same ports (the health endpoints refuse connections meanwhile). No
        graceful stop: a server with a dead stub waits its whole exit timeout for that model to unload."""
        self.stop(graceful=False)
        self.restarts += 1
        return self.start()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of the server log."""
        if self.log_path is None or not self.log_path.exists():
            return "(no server log)"
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def is_ready(self) -> bool:
        """Server ready and every model of the repository ready (over HTTP)."""
        import tritonclient.http as httpclient

        try:
            client = httpclient.InferenceServerClient(self.http_url, connection_timeout=2.0, network_timeout=5.0)
            try:
                if not client.is_server_ready():
                    return False
                index = client.get_model_repository_index()
                return bool(index) and all(client.is_model_ready(m["name"]) for m in index)
            finally:
                client.close()
        except Exception:  # connection refused while starting: not ready yet
            return False

    def wait_ready(self, timeout_s: float | None = None) -> None:
        """Poll readiness until ``timeout_s``; an early exit or the timeout raises with the log tail."""
        deadline = time.monotonic() + (self.ready_timeout_s if timeout_s is None else timeout_s)
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise TritonServerError(
                    f"tritonserver exited with code {code} before becoming ready; log tail:\n{self.log_tail()}"
                )
            if self.is_ready():
                return
            time.sleep(POLL_INTERVAL_S)
        raise TritonServerError(
            f"tritonserver not ready after {self.ready_timeout_s:.0f} s; log tail:\n{self.log_tail()}"
        )

    def stop(self, graceful: bool = True) -> int | None:
        """SIGTERM, wait ``stop_timeout_s``, then SIGKILL (at once when not ``graceful``); removes the private
        work folder. Idempotent."""
        code = None
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None and not graceful:
                process.kill()
                process.wait()
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(self.stop_timeout_s)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            code = process.returncode
            # Python stubs are children of the server; a clean shutdown ends them, a SIGKILL may not.
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._cleanup()
        return code

    def _cleanup(self) -> None:
        for cache in set(self.model_repository.glob(PYCACHE_GLOB)) - self._caches_before:
            shutil.rmtree(cache, ignore_errors=True)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._workdir is not None:
            # The default log lives in the work folder and goes with it (errors already quote its tail);
            # pass log_path to keep it.
            if self.log_path is not None and self.log_path.parent == self._workdir:
                self.log_path = None
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> TritonServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
