"""Rendering helm/imgsel with the real helm binary (tools.helm) for the chart tests, and walking what it renders."""

from __future__ import annotations

import functools
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml

from tools.helm import PROJECT_ROOT, helm_binary

CHART = PROJECT_ROOT / "helm" / "imgsel"
HELM = helm_binary()
NAMESPACE = "shop"
RELEASE = "imgsel"
SUPPORTED_KUBERNETES = ("1.28", "1.29", "1.30", "1.31")
PROMETHEUS_OPERATOR_API = "monitoring.coreos.com/v1"
# Kinds of Prometheus Operator CRDs; no Kubernetes schema knows them, and they are rendered only when the cluster
# serves their API.
ALLOWED_CRD_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}

# Value sets the chart is rendered and checked with: the GPU defaults, a repository in object storage (S3, GCS),
# monitoring on (both monitor kinds, the Grafana dashboard), Triton autoscaling with a GPU product affinity, and the
# cpu profile.
VALUE_SETS: dict[str, tuple[str, ...]] = {
    "defaults": (),
    "object-storage-s3": (
        "--set=triton.modelRepository.source=objectStorage",
        "--set=triton.modelRepository.objectStorage.url=s3://catalog-models/imgsel/gpu",
        "--set=triton.modelRepository.objectStorage.credentialsSecret=imgsel-s3",
        "--set=triton.engineBuild.enabled=false",
    ),
    "object-storage-gcs": (
        "--set=triton.modelRepository.source=objectStorage",
        "--set=triton.modelRepository.objectStorage.url=gs://catalog-models/imgsel/gpu",
        "--set=triton.modelRepository.objectStorage.credentialsSecret=imgsel-gcs",
        "--set=triton.engineBuild.enabled=false",
    ),
    "monitoring": (
        f"--api-versions={PROMETHEUS_OPERATOR_API}",
        "--set=monitoring.serviceMonitor.enabled=true",
        "--set=monitoring.prometheusRule.enabled=true",
        "--set=monitoring.grafanaDashboard.enabled=true",
        "--set=monitoring.labels.release=kube-prometheus-stack",
    ),
    "monitoring-podmonitor": (
        f"--api-versions={PROMETHEUS_OPERATOR_API}",
        "--set=monitoring.podMonitor.enabled=true",
    ),
    "autoscaling": (
        "--set=triton.autoscaling.enabled=true",
        "--set=triton.gpu.products={NVIDIA-L4,NVIDIA-A10G}",
    ),
    "cpu": (f"--values={CHART / 'values-cpu.yaml'}",),
}


@functools.cache
def helm_home() -> str:
    """Helm's cache, config and data folders for the tests (nothing written under the user's home)."""
    return tempfile.mkdtemp(prefix="imgsel-helm-")


def helm(*args: str) -> subprocess.CompletedProcess:
    home = helm_home()
    env = {
        **os.environ,
        "HELM_CACHE_HOME": f"{home}/cache",
        "HELM_CONFIG_HOME": f"{home}/config",
        "HELM_DATA_HOME": f"{home}/data",
    }
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, env=env, timeout=60)


def template(*args: str, kube_version: str = "1.30") -> subprocess.CompletedProcess:
    return helm("template", RELEASE, str(CHART), f"--namespace={NAMESPACE}", f"--kube-version={kube_version}.0", *args)


@functools.cache
def render(args: tuple[str, ...], kube_version: str = "1.30") -> tuple[dict, ...]:
    """Every object `helm template` renders with these arguments (failing the test when rendering fails)."""
    result = template(*args, kube_version=kube_version)
    if result.returncode != 0:
        raise AssertionError(f"helm template {' '.join(args)} failed:\n{result.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def objects(docs: tuple[dict, ...], kind: str) -> list[dict]:
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs: tuple[dict, ...], kind: str, component: str) -> dict:
    """The one object of `kind` of a component (triton, gateway, postgresql)."""
    found = [doc for doc in objects(docs, kind) if doc["metadata"]["name"] == f"{RELEASE}-{component}"]
    assert len(found) == 1, f"expected one {kind} {RELEASE}-{component}, found {len(found)}"
    return found[0]


def pod_specs(docs: tuple[dict, ...]) -> Iterator[tuple[str, dict]]:
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
            yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


def containers(spec: dict) -> list[dict]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def container(docs: tuple[dict, ...], component: str, name: str | None = None) -> dict:
    spec = named(docs, "Deployment", component)["spec"]["template"]["spec"]
    matches = [c for c in containers(spec) if c["name"] == (name or component)]
    assert len(matches) == 1
    return matches[0]


def port_number(container_spec: dict, port: int | str) -> int:
    """A probe's or Service's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container_spec["ports"] if p["name"] == port)


def argument(container_spec: dict, flag: str) -> str:
    """The value of `--flag=value` among the container's arguments."""
    values = [a.split("=", 1)[1] for a in container_spec.get("args", []) if a.startswith(f"{flag}=")]
    assert len(values) == 1, f"{flag} given {len(values)} times"
    return values[0]


def chart_file(path: str) -> Path:
    return CHART / path
