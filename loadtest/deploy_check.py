"""Play the Helm chart's cpu profile with podman and send real traffic through it (`make deploy-check`).

    python -m loadtest.deploy_check [--gateways 2] [--json loadtest/results/deploy_check.json] [--keep]

1. Renders helm/imgsel with values-cpu.yaml (the helm of `make helm`), on free ports and with the PostgreSQL image
   of `make images` (docker.io/pgvector/pgvector cannot be pulled here; ours follows its conventions).
2. Turns the rendering into what `podman kube play --network host` (podman 4.3, Debian 12) can run, changing only
   what has no meaning or no support there (`podman_plan`, each change said where it is made):
   HorizontalPodAutoscaler, PodDisruptionBudget, NetworkPolicy and Prometheus Operator objects are left out; every
   Service name resolves to 127.0.0.1 through a hosts file mounted at /etc/hosts (all pods share the host network);
   the StatefulSet runs as a Deployment with its volume claim; each gateway replica gets its own port (one network);
   emptyDir volumes are tmpfs volumes per pod, owned by its user and fsGroup (podman shares them by name and applies
   no fsGroup); Secrets become podman secrets in the form podman 4.3 reads them; declared container ports are dropped
   (podman 4.3 makes port mappings of them, which the host network refuses).
3. Plays it, waits until every container passes its own readinessProbe (evaluated here: podman 4.3 does not run
   readiness probes), sends /v1/select through the first gateway container and checks the answer (200, every image
   with a verdict, the corrupt one rejected as undecodable); with two gateways, a placeholder added through one is
   matched through the other (one database). Traffic goes to 127.0.0.1 only.
4. Tears everything down (podman kube down, the pods, volumes and secrets it made), also after a failure.

Prints one JSON line of timings; exit code 1 when a check fails, 2 when the stack could not be started.

Size: over ~400 lines because every podman 4.3 workaround lives next to the step that needs it (one plan, one play,
one check), so what a real cluster would do differently is read in one place.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tools.helm import helm_binary
from tools.images import IMAGES, ImageError, podman

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHART = PROJECT_ROOT / "helm" / "imgsel"
CPU_VALUES = CHART / "values-cpu.yaml"
RELEASE = "imgsel-check"
NAMESPACE = "default"
CLUSTER_DOMAIN = "cluster.local"
# Kinds podman kube play does not run, or that mean nothing on one host network; left out of the played manifest.
NOT_PLAYED = {
    "HorizontalPodAutoscaler": "no autoscaler without Kubernetes",
    "PodDisruptionBudget": "no evictions without Kubernetes",
    "NetworkPolicy": "every pod shares the host network: nothing to police",
    "ServiceMonitor": "no Prometheus Operator",
    "PodMonitor": "no Prometheus Operator",
    "PrometheusRule": "no Prometheus Operator",
    "ConfigMap": "only the prometheus-adapter rule (autoscaling) renders one in the cpu profile",
    "Service": "no Services on one host network: their names resolve to 127.0.0.1 through the hosts file",
}
HOSTS_PATH = "/etc/hosts"


class DeployCheckFailed(AssertionError):
    pass


class StackFailed(RuntimeError):
    pass


def free_ports(count: int) -> list[int]:
    """Ports free on every address (the containers bind 0.0.0.0 on the host network), all held until chosen."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class Ports:
    triton_http: int
    triton_grpc: int
    triton_metrics: int
    postgresql: int
    gateways: list[int]

    @classmethod
    def free(cls, gateways: int) -> Ports:
        ports = free_ports(4 + gateways)
        return cls(*ports[:4], gateways=ports[4:])


def helm_values(ports: Ports) -> list[str]:
    """--set overrides on top of values-cpu.yaml: free ports (the host network is shared with other stacks) and the
    local PostgreSQL image."""
    image = IMAGES["postgresql"].tag
    repository, tag = image.rsplit(":", 1)
    return [
        f"triton.ports.http={ports.triton_http}",
        f"triton.ports.grpc={ports.triton_grpc}",
        f"triton.ports.metrics={ports.triton_metrics}",
        f"postgresql.port={ports.postgresql}",
        f"postgresql.image.repository={repository}",
        f"postgresql.image.tag={tag}",
        f"gateway.port={ports.gateways[0]}",
        f"gateway.replicas={len(ports.gateways)}",
    ]


def render(ports: Ports, helm: Path | None = None) -> list[dict]:
    command = [str(helm or helm_binary()), "template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    command += ["-f", str(CPU_VALUES)]
    for value in helm_values(ports):
        command += ["--set", value]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackFailed(f"helm template failed: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@dataclass
class PodmanPlan:
    """What is played: the manifests, the podman secrets to create first (name -> JSON), the hosts file, the pods'
    workloads, every named volume (for teardown) and the emptyDir ones to create first (name -> tmpfs options)."""

    manifests: list[dict]
    secrets: dict[str, str]
    hosts: str
    skipped: dict[str, list[str]]
    workloads: list[dict]
    volumes: list[str] = field(default_factory=list)
    tmpfs_volumes: dict[str, str] = field(default_factory=dict)
    gateways: list[str] = field(default_factory=list)


def service_hostnames(services: list[dict]) -> list[str]:
    names = []
    for service in services:
        name = service["metadata"]["name"]
        names += [name, f"{name}.{NAMESPACE}", f"{name}.{NAMESPACE}.svc", f"{name}.{NAMESPACE}.svc.{CLUSTER_DOMAIN}"]
    return names


def hosts_file(services: list[dict]) -> str:
    return "127.0.0.1 localhost\n" + "".join(f"127.0.0.1 {name}\n" for name in service_hostnames(services))


def statefulset_as_deployment(statefulset: dict) -> tuple[dict, list[dict]]:
    """A one-replica StatefulSet as a Deployment (podman kube play 4.3 has no StatefulSet) and its volume claims as
    PersistentVolumeClaims (podman makes named volumes of them), mounted as the StatefulSet's pod would be."""
    name = statefulset["metadata"]["name"]
    spec = statefulset["spec"]
    if spec.get("replicas", 1) != 1:
        raise StackFailed(f"StatefulSet {name}: only one replica can be played here")
    template = copy.deepcopy(spec["template"])
    claims = []
    for claim_template in spec.get("volumeClaimTemplates", []):
        claim_name = f"{claim_template['metadata']['name']}-{name}-0"
        claims.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim_name},
                "spec": copy.deepcopy(claim_template["spec"]),
            }
        )
        template["spec"].setdefault("volumes", []).append(
            {"name": claim_template["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim_name}}
        )
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": copy.deepcopy(statefulset["metadata"]),
        "spec": {"replicas": 1, "selector": copy.deepcopy(spec["selector"]), "template": template},
    }
    return deployment, claims


def with_port(deployment: dict, index: int, port: int) -> dict:
    """Replica `index` of the gateway Deployment as a Deployment of its own listening on `port`: on one host network
    two replicas cannot share a port. The port appears in the container's port, its --port argument and IMGSEL_PORT."""
    replica = copy.deepcopy(deployment)
    replica["metadata"]["name"] = f"{deployment['metadata']['name']}-{index}"
    replica["spec"]["replicas"] = 1
    (container,) = replica["spec"]["template"]["spec"]["containers"]
    for entry in container.get("ports", []):
        if entry.get("name") == "http":
            entry["containerPort"] = port
    container["args"] = [f"--port={port}" if arg.startswith("--port=") else arg for arg in container.get("args", [])]
    for variable in container.get("env", []):
        if variable["name"] == "IMGSEL_PORT":
            variable["value"] = str(port)
    return replica


def secret_uses(workloads: list[dict]) -> dict[str, set[str]]:
    """Secret name -> {"env", "volume"}: how the pods consume it."""
    uses: dict[str, set[str]] = {}
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                uses.setdefault(volume["secret"]["secretName"], set()).add("volume")
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            for variable in container.get("env", []):
                reference = variable.get("valueFrom", {}).get("secretKeyRef")
                if reference:
                    uses.setdefault(reference["name"], set()).add("env")
    return uses


def podman_secret(secret: dict, use: str) -> str:
    """The podman secret's data for a Kubernetes Secret. podman 4.3 reads a secretKeyRef from a JSON object of
    base64 values, and a secret volume from a Secret object whose `data` values it writes to the files as they are
    (not base64-decoded, and `stringData` ignored), so a volume's secret carries the decoded values in `data`."""
    data = secret.get("data") or {}
    decoded = {key: base64.b64decode(value).decode() for key, value in data.items()}
    decoded |= secret.get("stringData") or {}
    if use == "env":
        return json.dumps({key: base64.b64encode(value.encode()).decode() for key, value in decoded.items()})
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret["metadata"]["name"]},
                       "data": decoded})  # fmt: skip


def adapt_pod(workload: dict, hosts_path: Path) -> dict[str, str]:
    """In place: per-pod emptyDir names, secret volumes marked non-optional (podman 4.3.1 dereferences the unset
    field and crashes), the hosts file at /etc/hosts in every container, no declared container ports. Returns the
    emptyDir volumes to create beforehand (name -> tmpfs mount options): podman applies no fsGroup, so a volume it
    made itself would be root's and closed to the pod's user (PostgreSQL's socket directory); created as tmpfs owned
    by the pod's user and fsGroup with Kubernetes' emptyDir mode 0777, it is what the pod gets on a cluster."""
    name = workload["metadata"]["name"]
    pod = workload["spec"]["template"]["spec"]
    context = pod.get("securityContext", {})
    uid = context.get("runAsUser", 0)
    gid = context.get("fsGroup", context.get("runAsGroup", 0))
    renamed = {}
    for volume in pod.get("volumes", []):
        if "emptyDir" in volume:
            renamed[volume["name"]] = volume["name"] = f"{name}-{volume['name']}"
        if "secret" in volume:
            volume["secret"]["optional"] = False
    pod.setdefault("volumes", []).append({"name": "hosts", "hostPath": {"path": str(hosts_path), "type": "File"}})
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        for mount in container.get("volumeMounts", []):
            mount["name"] = renamed.get(mount["name"], mount["name"])
        container.setdefault("volumeMounts", []).append({"name": "hosts", "mountPath": HOSTS_PATH, "readOnly": True})
        # podman 4.3 turns declared container ports into port mappings, which the host network refuses; on it every
        # port is the container's own anyway. Probes naming a port get its number first.
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            handler = container.get(probe, {}).get("httpGet") or container.get(probe, {}).get("tcpSocket")
            if handler and isinstance(handler["port"], str):
                handler["port"] = resolve_port(container, handler["port"])
        container.pop("ports", None)
    return {volume: f"uid={uid},gid={gid},mode=0777" for volume in renamed.values()}


def podman_plan(docs: list[dict], hosts_path: Path, gateway_ports: list[int]) -> PodmanPlan:
    skipped: dict[str, list[str]] = {}
    secrets, services, workloads, claims = {}, [], [], []
    gateways = []
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind == "Secret":
            secrets[name] = doc
        elif kind == "Service":
            services.append(doc)
            skipped.setdefault(kind, []).append(name)
        elif kind == "StatefulSet":
            deployment, volume_claims = statefulset_as_deployment(doc)
            workloads.append(deployment)
            claims += volume_claims
        elif kind == "Deployment" and doc["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "gateway":
            replicas = doc["spec"].get("replicas", 1)
            if replicas != len(gateway_ports):
                raise StackFailed(f"{name}: {replicas} replicas rendered, {len(gateway_ports)} ports chosen")
            split = [with_port(doc, index, port) for index, port in enumerate(gateway_ports)]
            workloads += split
            gateways = [replica["metadata"]["name"] for replica in split]
        elif kind == "Deployment":
            if doc["spec"].get("replicas", 1) != 1:
                raise StackFailed(f"{name}: more than one replica on one host network would collide on its ports")
            workloads.append(doc)
        elif kind in NOT_PLAYED:
            skipped.setdefault(kind, []).append(name)
        else:
            raise StackFailed(f"{kind} {name}: not known to this check (played or deliberately left out?)")
    tmpfs_volumes = {}
    for workload in workloads:
        tmpfs_volumes |= adapt_pod(workload, hosts_path)
    volumes = [claim["metadata"]["name"] for claim in claims] + list(tmpfs_volumes)
    podman_secrets = {}
    uses_by_secret = secret_uses(workloads)
    volumes += [name for name, uses in uses_by_secret.items() if "volume" in uses]  # podman 4.3 makes one per secret
    for secret_name, uses in uses_by_secret.items():
        if secret_name not in secrets:
            raise StackFailed(f"Secret {secret_name} is referenced but not rendered (an existingSecret?)")
        if len(uses) > 1:
            raise StackFailed(f"Secret {secret_name} is used as {sorted(uses)}: podman 4.3 needs one form per secret")
        podman_secrets[secret_name] = podman_secret(secrets[secret_name], uses.pop())
    return PodmanPlan(
        claims + workloads, podman_secrets, hosts_file(services), skipped, workloads, volumes, tmpfs_volumes, gateways
    )


def api_keys(docs: list[dict]) -> dict[str, str]:
    """scope -> key from the rendered API-key Secret (values-cpu.yaml generates random keys)."""
    for doc in docs:
        if doc["kind"] == "Secret" and "api-keys" in (doc.get("data") or {}):
            lines = base64.b64decode(doc["data"]["api-keys"]).decode().splitlines()
            return dict(line.split(":", 1) for line in lines if ":" in line)
    raise StackFailed("no API-key Secret rendered")


# ---- running it ----------------------------------------------------------------------------------------------


def containers() -> list[dict]:
    return json.loads(podman("ps", "--all", "--format", "json").stdout or "[]")


def pod_containers(workload: str) -> list[dict]:
    """The containers podman made for a workload's pod (`<name>-pod-0`), infra container excluded."""
    return [c for c in containers() if c.get("PodName", "").startswith(f"{workload}-pod") and not c.get("IsInfra")]


def resolve_port(container: dict, port) -> int:
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container.get("ports", []) if p.get("name") == port)


def probe_passes(probe: dict, spec: dict, container_name: str) -> bool:
    timeout = probe.get("timeoutSeconds", 1)
    if "httpGet" in probe:
        port = resolve_port(spec, probe["httpGet"]["port"])
        url = f"http://127.0.0.1:{port}{probe['httpGet'].get('path', '/')}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return 200 <= response.status < 400
        except (urllib.error.URLError, OSError):
            return False
    if "exec" in probe:
        try:
            result = podman("exec", container_name, *probe["exec"]["command"], check=False, timeout=timeout + 5)
        except subprocess.TimeoutExpired:
            return False  # as kubelet counts a probe past its timeout: not ready yet, tried again
        return result.returncode == 0
    if "tcpSocket" in probe:
        try:
            with socket.create_connection(("127.0.0.1", resolve_port(spec, probe["tcpSocket"]["port"])), timeout):
                return True
        except OSError:
            return False
    raise StackFailed(f"probe of {container_name} has no handler this check knows: {probe}")


def restarts(container_name: str) -> int:
    """How often the container was restarted (restartPolicy Always hides a crash behind a running state)."""
    result = podman("inspect", "--format", "{{.RestartCount}}", container_name, check=False)
    return int(result.stdout.strip() or 0) if result.returncode == 0 else 0


def logs_tail(container_name: str, lines: int = 30) -> str:
    result = podman("logs", "--tail", str(lines), container_name, check=False)
    return (result.stdout + result.stderr).strip()


def wait_ready(plan: PodmanPlan, timeout_s: float) -> dict[str, float]:
    """Seconds from now until each container first passes its readinessProbe; fails fast on an exited container."""
    started = time.monotonic()
    pending = {}
    for workload in plan.workloads:
        for spec in workload["spec"]["template"]["spec"]["containers"]:
            pending[(workload["metadata"]["name"], spec["name"])] = spec
    ready: dict[str, float] = {}
    while pending:
        running = {c["Names"][0]: c for c in containers()}
        for (workload, name), spec in list(pending.items()):
            found = [n for n in running if n.startswith(f"{workload}-pod") and n.endswith(f"-{name}")]
            if not found:
                continue
            container_name = found[0]
            state = running[container_name]
            if state.get("State") == "exited" or restarts(container_name):
                raise StackFailed(f"{container_name} exited ({state.get('ExitCode')}):\n{logs_tail(container_name)}")
            probe = spec.get("readinessProbe")
            if probe is None or probe_passes(probe, spec, container_name):
                ready[container_name] = round(time.monotonic() - started, 1)
                del pending[(workload, name)]
        if pending and time.monotonic() - started > timeout_s:
            names = [f"{w}/{n}" for w, n in pending]
            tails = "\n".join(logs_tail(c["Names"][0], 10) for w, _ in pending for c in pod_containers(w))
            raise StackFailed(f"not ready after {timeout_s:.0f} s: {', '.join(names)}\n{tails}")
        time.sleep(0.5)
    return ready


def request(port: int, method: str, path: str, key: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    call = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(call, timeout=120) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def check_select(port: int, key: str) -> dict:
    """One product of three photos and a corrupt file through the gateway container: 200, a verdict per image, the
    corrupt one rejected as undecodable, at least one photo selected."""
    from loadtest.products import benchmark_images
    from tests.helpers import corrupt_jpeg

    photos, source = benchmark_images(3)
    images = [{"id": f"photo-{i}", "data": b64(photo)} for i, photo in enumerate(photos)]
    images.append({"id": "corrupt", "data": b64(corrupt_jpeg(photos[0]))})
    started = time.monotonic()
    status, answer = request(port, "POST", "/v1/select", key, {"product_id": "deploy-check", "images": images})
    seconds = time.monotonic() - started
    if status != 200:
        raise DeployCheckFailed(f"/v1/select answered {status}: {answer}")
    verdicts = {image["id"]: image for image in answer["images"]}
    if set(verdicts) != {image["id"] for image in images}:
        raise DeployCheckFailed(f"verdicts for {sorted(verdicts)}, sent {[image['id'] for image in images]}")
    corrupt = verdicts["corrupt"]
    if corrupt["status"] == "selected" or "undecodable" not in corrupt["reasons"]:
        raise DeployCheckFailed(f"the corrupt file was not rejected as undecodable: {corrupt}")
    if not answer["selected"]:
        raise DeployCheckFailed(f"no photo selected: {answer}")
    return {
        "select_s": round(seconds, 2),
        "photos": source,
        "statuses": {image_id: verdict["status"] for image_id, verdict in verdicts.items()},
        "category": answer["category"],
    }


def check_shared_placeholders(writer: int, reader: int, key: str) -> dict:
    """A placeholder added through one gateway is matched, by the library, through the other (shared database)."""
    from tests.helpers import encode, rendered_placeholder

    known = b64(encode(rendered_placeholder(500, seed=23), "PNG"))
    body = {"product_id": "deploy-check-shared", "category": "apparel", "images": [{"id": "img", "data": known}]}

    def placeholder_mechanism() -> str | None:
        status, answer = request(reader, "POST", "/v1/select", key, body)
        if status != 200:
            raise DeployCheckFailed(f"/v1/select through the second gateway answered {status}: {answer}")
        return (answer["images"][0].get("placeholder") or {}).get("mechanism")

    placeholder_id = "deploy-check-placeholder"
    if placeholder_mechanism() == "library":
        raise DeployCheckFailed("the second gateway matched the placeholder before it was added")
    status, answer = request(
        writer, "POST", "/v1/placeholders", key, {"images": [{"id": placeholder_id, "data": known}]}
    )
    if status != 200:
        raise DeployCheckFailed(f"/v1/placeholders through the first gateway answered {status}: {answer}")
    try:
        if placeholder_mechanism() != "library":
            raise DeployCheckFailed("the placeholder added through the first gateway was not matched by the second")
    finally:
        request(writer, "DELETE", f"/v1/placeholders/{placeholder_id}", key)
    return {"shared_placeholder": "added through gateway 0, matched by the library through gateway 1"}


def teardown(manifest: Path, plan: PodmanPlan) -> None:
    """Everything this check made, also when a step failed (and leftovers of an interrupted run before starting)."""
    if manifest.is_file():
        podman("kube", "down", str(manifest), check=False)
    for workload in plan.workloads:
        for container in pod_containers(workload["metadata"]["name"]):
            podman("pod", "rm", "--force", container["PodName"], check=False)
    for volume in plan.volumes:
        podman("volume", "rm", "--force", volume, check=False)
    for name in plan.secrets:
        podman("secret", "rm", name, check=False)


def deploy_check(gateways: int, keep: bool = False, ready_timeout_s: float = 600) -> dict:
    started = time.monotonic()
    for image in IMAGES.values():
        if podman("image", "exists", image.tag, check=False).returncode != 0:
            raise StackFailed(f"no image {image.tag}: run `make images`")
    ports = Ports.free(gateways)
    docs = render(ports)
    work = Path(tempfile.mkdtemp(prefix="imgsel-deploy-check-"))
    hosts_path = work / "hosts"
    plan = podman_plan(docs, hosts_path, ports.gateways)
    hosts_path.write_text(plan.hosts)
    hosts_path.chmod(0o644)
    manifest = work / "manifest.yaml"
    manifest.write_text(yaml.safe_dump_all(plan.manifests, sort_keys=False))
    result = {"gateways": gateways, "not_played": plan.skipped, "manifest": str(manifest)}
    teardown(manifest, plan)
    try:
        for name, data in plan.secrets.items():
            secret_file = work / f"secret-{name}.json"
            secret_file.write_text(data)
            podman("secret", "create", name, str(secret_file))
            secret_file.unlink()
        for name, options in plan.tmpfs_volumes.items():
            podman("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", f"o={options}", name)
        play_started = time.monotonic()
        podman("kube", "play", "--network", "host", str(manifest), timeout=300)
        result["play_s"] = round(time.monotonic() - play_started, 1)
        result["ready_s"] = wait_ready(plan, ready_timeout_s)
        result["ready_all_s"] = round(time.monotonic() - play_started, 1)
        key = api_keys(docs)["admin"]
        result |= check_select(ports.gateways[0], key)
        if gateways > 1:
            result |= check_shared_placeholders(ports.gateways[0], ports.gateways[1], key)
    finally:
        if not keep:
            teardown_started = time.monotonic()
            teardown(manifest, plan)
            shutil.rmtree(work)
            result["teardown_s"] = round(time.monotonic() - teardown_started, 1)
    result["wall_s"] = round(time.monotonic() - started, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateways", type=int, default=2, help="gateway replicas sharing the database (1 or more)")
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--keep", action="store_true", help="leave the pods running (the manifest's path is printed)")
    args = parser.parse_args(argv)
    # SIGTERM (a CI timeout) unwinds like Ctrl-C, so the teardown in deploy_check's `finally` still runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        result = deploy_check(args.gateways, args.keep)
    except DeployCheckFailed as error:
        print(f"deploy-check FAILED: {error}", file=sys.stderr)
        return 1
    except (StackFailed, ImageError, subprocess.TimeoutExpired) as error:
        print(f"deploy-check could not run the stack: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
