"""The KubeRay RayJob manifest (no cluster here): its entrypoint is a command the backfill's CLI accepts, its Ray
version is the pinned one, its Secret passes the Kubernetes schema and names only real settings."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import kubernetes_validate
import ray
import yaml

from backfill.__main__ import parser
from gateway.settings import ENV_PREFIX, Settings

MANIFEST = Path(__file__).resolve().parents[2] / "backfill" / "kuberay" / "rayjob.yaml"
CONSUMED_BY_THE_ENTRYPOINT = {"IMGSEL_MODEL_VERSION"}


def documents() -> dict[str, dict]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(MANIFEST.read_text())}


def test_the_entrypoint_is_a_valid_backfill_command():
    job = documents()["RayJob"]["spec"]
    secret = documents()["Secret"]["stringData"]
    command = os.path.expandvars(job["entrypoint"].replace("$IMGSEL_MODEL_VERSION", secret["IMGSEL_MODEL_VERSION"]))
    words = shlex.split(command)
    assert words[:3] == ["python", "-m", "backfill"]
    args = parser().parse_args(words[3:])
    assert args.command == "run" and args.output.startswith("s3://") and args.model_version == "models-2026-12-03"
    assert job["rayClusterSpec"]["rayVersion"] == ray.__version__


def test_every_pod_runs_the_same_image_with_the_settings():
    cluster = documents()["RayJob"]["spec"]["rayClusterSpec"]
    pods = [cluster["headGroupSpec"]["template"]] + [g["template"] for g in cluster["workerGroupSpecs"]]
    containers = [c for pod in pods for c in pod["spec"]["containers"]]
    assert len({c["image"] for c in containers}) == 1
    assert all(c["envFrom"] == [{"secretRef": {"name": "imgsel-backfill-env"}}] for c in containers)


def test_the_secret_is_valid_and_names_real_settings():
    secret = documents()["Secret"]
    kubernetes_validate.validate(secret, "1.31", strict=True)
    names = {k for k in secret["stringData"] if k.startswith(ENV_PREFIX)} - CONSUMED_BY_THE_ENTRYPOINT
    assert {f"{ENV_PREFIX}{field.upper()}" for field in Settings.model_fields} >= names
    assert {"IMGSEL_TRITON_GRPC_URL", "IMGSEL_DATABASE_URL"} <= names
