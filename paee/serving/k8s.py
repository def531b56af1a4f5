"""Kubernetes manifests for an exported repository on Triton: `python -m paee.serving.k8s --flavour gpu|cpu`.

Plain manifests generated in code, not a Helm chart: the values that must agree with the rest of the package
(ports, health paths, shared-memory size) come from one place (`paee.serving.server`, this module's tables),
a test renders and schema-validates exactly what a user applies (no helm binary needed here or in CI), and
`kubectl apply -f` or any templating layer (Kustomize, Helm, Argo) takes the output as it is.

What it writes (one YAML stream): a Deployment of NVIDIA's Triton container (GPU flavour: one GPU per
replica; CPU flavour: the python-backend models on CPU), a Service (HTTP, gRPC, metrics), and a
HorizontalPodAutoscaler. Readiness probes ``/v2/health/ready``, liveness ``/v2/health/live``; the pods carry
the ``prometheus.io/*`` scrape annotations on the metrics port. The repository comes from a read-only
PersistentVolumeClaim, or an init container downloads and unpacks a tarball into an emptyDir.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paee.errors import PaeeUserError, console_script
from paee.serving.server import DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT, DEFAULT_METRICS_PORT

#: NVIDIA's Triton container, the version the nvidia-pytriton wheel bundles (Triton 2.51, README).
TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:24.10-py3"
#: Where the repository is mounted in the container.
MODELS_DIR = "/models"
#: The python backend passes tensors through /dev/shm; 64 MB (the default) is too small for long documents.
SHM_SIZE = "1Gi"
#: Triton's health endpoints (KServe v2 protocol).
READY_PATH, LIVE_PATH = "/v2/health/ready", "/v2/health/live"
PORTS = {"http": DEFAULT_HTTP_PORT, "grpc": DEFAULT_GRPC_PORT, "metrics": DEFAULT_METRICS_PORT}


@dataclass(frozen=True)
class Flavour:
    """What differs between the GPU and the CPU flavour of a replica."""

    resources: dict[str, dict[str, str]]
    #: serving dependencies of the python models, installed at start unless the image already has them
    pip: str


FLAVOURS = {
    "gpu": Flavour({"requests": {"cpu": "4", "memory": "8Gi"}, "limits": {"nvidia.com/gpu": "1", "memory": "16Gi"}},
                   "'numpy<2' 'tokenizers>=0.20'"),
    "cpu": Flavour({"requests": {"cpu": "4", "memory": "4Gi"}, "limits": {"cpu": "8", "memory": "8Gi"}},
                   "'numpy<2' 'tokenizers>=0.20' 'onnxruntime>=1.20'"),
}


@dataclass(frozen=True)
class DeploySettings:
    """One deployment of one exported repository.

    Exactly one of ``claim`` (a PersistentVolumeClaim holding the repository at its root) and ``repository_url``
    (a .tar.gz of the repository folder, unpacked by an init container) says where the repository comes from.
    ``wheel`` is a paee wheel's path inside the image or the volume (installed at start with the flavour's
    serving dependencies); None when the image already has paee installed.
    """

    name: str = "paee"
    flavour: str = "gpu"
    image: str = TRITON_IMAGE
    claim: str | None = None
    repository_url: str | None = None
    wheel: str | None = None
    min_replicas: int = 1
    max_replicas: int = 4
    target_cpu_percent: int = 70  # the python pre/post-processing models load the CPU in both flavours

    def check(self) -> None:
        if self.flavour not in FLAVOURS:
            raise PaeeUserError(f"flavour {self.flavour!r}: expected one of {', '.join(FLAVOURS)}")
        if (self.claim is None) == (self.repository_url is None):
            raise PaeeUserError("give exactly one repository source: a volume claim (--claim) or a tarball URL (--repository-url)")
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise PaeeUserError(f"replicas: need 1 <= min ({self.min_replicas}) <= max ({self.max_replicas})")


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period, "failureThreshold": failures}


def _container(s: DeploySettings) -> dict[str, Any]:
    setup = f"pip install -q --no-deps {s.wheel} && pip install -q {FLAVOURS[s.flavour].pip} && " if s.wheel else ""
    serve = (f"exec tritonserver --model-repository={MODELS_DIR} --http-port={PORTS['http']} "
             f"--grpc-port={PORTS['grpc']} --metrics-port={PORTS['metrics']}")
    return {
        "name": "triton",
        "image": s.image,
        "command": ["bash", "-c", setup + serve],
        "ports": [{"name": name, "containerPort": port} for name, port in PORTS.items()],
        # a replica is ready once every model loaded; startup allows slow loads (TensorRT builds engines)
        "startupProbe": _probe(READY_PATH, 10, 60),
        "readinessProbe": _probe(READY_PATH, 5, 3),
        "livenessProbe": _probe(LIVE_PATH, 10, 3),
        "resources": FLAVOURS[s.flavour].resources,
        "volumeMounts": [{"name": "models", "mountPath": MODELS_DIR, "readOnly": s.claim is not None},
                         {"name": "shm", "mountPath": "/dev/shm"}],
    }


def _pod_spec(s: DeploySettings) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": SHM_SIZE}}]
    spec: dict[str, Any] = {"containers": [_container(s)], "volumes": volumes}
    if s.claim is not None:
        volumes.insert(0, {"name": "models", "persistentVolumeClaim": {"claimName": s.claim, "readOnly": True}})
    else:
        volumes.insert(0, {"name": "models", "emptyDir": {}})
        spec["initContainers"] = [{
            "name": "fetch-repository", "image": "busybox:1.36",
            "command": ["sh", "-c", f'wget -qO- "$REPOSITORY_URL" | tar xz -C {MODELS_DIR}'],
            "env": [{"name": "REPOSITORY_URL", "value": s.repository_url}],
            "volumeMounts": [{"name": "models", "mountPath": MODELS_DIR}],
        }]
    if s.flavour == "gpu":
        spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    return spec


def render_manifests(settings: DeploySettings) -> list[dict[str, Any]]:
    """The Deployment, Service and HorizontalPodAutoscaler of one deployment, as Kubernetes objects."""
    settings.check()
    s = settings
    labels = {"app.kubernetes.io/name": s.name, "app.kubernetes.io/component": f"triton-{s.flavour}"}
    scrape = {"prometheus.io/scrape": "true", "prometheus.io/port": str(PORTS["metrics"]), "prometheus.io/path": "/metrics"}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": s.name, "labels": labels},
        "spec": {
            "replicas": s.min_replicas, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels, "annotations": scrape}, "spec": _pod_spec(s)},
        },
    }
    service = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": s.name, "labels": labels, "annotations": scrape},
        "spec": {"selector": labels,
                 "ports": [{"name": name, "port": port, "targetPort": name} for name, port in PORTS.items()]},
    }
    hpa = {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": s.name, "labels": labels},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": s.name},
            "minReplicas": s.min_replicas, "maxReplicas": s.max_replicas,
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": s.target_cpu_percent}}}],
        },
    }
    return [deployment, service, hpa]


def to_yaml(objects: Sequence[dict[str, Any]]) -> str:
    import yaml  # PyYAML, a dependency of transformers

    class _Plain(yaml.SafeDumper):  # shared dicts (labels) written out in full, not as &anchors
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return yaml.dump_all(objects, Dumper=_Plain, sort_keys=False)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m paee.serving.k8s", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--flavour", default="gpu", choices=list(FLAVOURS))
    p.add_argument("--name", default="paee")
    p.add_argument("--image", default=TRITON_IMAGE)
    p.add_argument("--claim", help="PersistentVolumeClaim holding the exported repository")
    p.add_argument("--repository-url", help="URL of the repository as .tar.gz, unpacked by an init container")
    p.add_argument("--wheel", help="paee wheel to install at start (path in the image or under /models)")
    p.add_argument("--min-replicas", type=int, default=1)
    p.add_argument("--max-replicas", type=int, default=4)
    p.add_argument("--out", type=Path, help="YAML file (default: stdout)")
    return p


def _main(args: argparse.Namespace) -> int:
    text = to_yaml(render_manifests(DeploySettings(
        name=args.name, flavour=args.flavour, image=args.image, claim=args.claim, repository_url=args.repository_url,
        wheel=args.wheel, min_replicas=args.min_replicas, max_replicas=args.max_replicas)))
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


main = console_script(build_parser, _main)

if __name__ == "__main__":
    sys.exit(main())
