"""Kubernetes manifests (`paee.serving.k8s`): rendered for both flavours and both repository sources, checked
against Triton's ports and health endpoints, and schema-validated offline with kubernetes-validate."""

from __future__ import annotations

import pytest
import yaml

from paee.errors import PaeeUserError
from paee.serving.k8s import DeploySettings, main, render_manifests, to_yaml
from paee.serving.server import DEFAULT_METRICS_PORT

CASES = {
    "gpu-claim": DeploySettings(flavour="gpu", claim="paee-repo", wheel="/models/paee-0.1.0-py3-none-any.whl"),
    "cpu-init": DeploySettings(flavour="cpu", repository_url="https://example.org/repo.tar.gz", max_replicas=8),
}


def _by_kind(objects):
    return {o["kind"]: o for o in objects}


@pytest.mark.parametrize("case", list(CASES))
def test_manifests_probe_health_scrape_metrics_and_autoscale(case):
    settings = CASES[case]
    objects = _by_kind(yaml.safe_load_all(to_yaml(render_manifests(settings))))
    assert set(objects) == {"Deployment", "Service", "HorizontalPodAutoscaler"}
    pod = objects["Deployment"]["spec"]["template"]
    (triton,) = pod["spec"]["containers"]
    assert triton["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert triton["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(DEFAULT_METRICS_PORT)
    assert {"name": "metrics", "containerPort": DEFAULT_METRICS_PORT} in triton["ports"]
    assert "--model-repository=/models" in triton["command"][-1]
    gpus = triton["resources"]["limits"].get("nvidia.com/gpu")
    assert gpus == ("1" if settings.flavour == "gpu" else None)
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    if settings.claim:
        assert volumes["models"]["persistentVolumeClaim"]["claimName"] == settings.claim
    else:
        assert "emptyDir" in volumes["models"] and pod["spec"]["initContainers"][0]["env"][0]["value"] == settings.repository_url
    hpa = objects["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == objects["Deployment"]["metadata"]["name"]
    assert hpa["maxReplicas"] == settings.max_replicas


@pytest.mark.parametrize("case", list(CASES))
def test_manifests_validate_against_the_kubernetes_schema(case, tmp_path):
    kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate (pip) is not installed here")
    path = tmp_path / "paee.yaml"
    assert main(["--out", str(path), *_argv(CASES[case])]) == 0
    for obj in yaml.safe_load_all(path.read_text()):
        kv.validate(obj, "1.30", strict=True)  # raises ValidationError naming the field


def _argv(s: DeploySettings) -> list[str]:
    argv = ["--flavour", s.flavour, "--max-replicas", str(s.max_replicas)]
    argv += ["--claim", s.claim] if s.claim else ["--repository-url", s.repository_url]
    return argv + (["--wheel", s.wheel] if s.wheel else [])


def test_exactly_one_repository_source_is_a_clear_error():
    with pytest.raises(PaeeUserError, match="exactly one repository source"):
        render_manifests(DeploySettings(flavour="cpu"))
    with pytest.raises(PaeeUserError, match="flavour 'tpu'"):
        render_manifests(DeploySettings(flavour="tpu", claim="c"))
