"""The deploy-check's translation of the rendered cpu profile into what podman 4.3 plays, checked on a real helm
rendering without podman: what is left out and why, Service names on loopback, the StatefulSet as a Deployment
with its claim, one port per gateway replica, per-pod emptyDir volumes, podman's two secret forms; and the readiness
probes it evaluates itself. Playing it for real is `make deploy-check`."""

from __future__ import annotations

import base64
import http.server
import json
import socket
import subprocess
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from loadtest import deploy_check
from tools.helm import helm_binary

pytestmark = pytest.mark.skipif(not helm_binary().is_file(), reason="no helm: run `make helm` (tools/helm.py)")
HOSTS = Path("/run/imgsel/hosts")


@pytest.fixture(scope="module")
def rendered():
    ports = deploy_check.Ports(18000, 18001, 18002, 15432, gateways=[18080, 18081])
    return ports, deploy_check.render(ports)


@pytest.fixture(scope="module")
def plan(rendered):
    ports, docs = rendered
    return deploy_check.podman_plan(docs, HOSTS, ports.gateways)


def by_name(plan, kind):
    return {doc["metadata"]["name"]: doc for doc in plan.manifests if doc["kind"] == kind}


def env_of(container):
    return {variable["name"]: variable.get("value", variable.get("valueFrom")) for variable in container["env"]}


def test_only_deployments_and_claims_are_played_and_everything_else_is_accounted_for(rendered, plan):
    _, docs = rendered
    assert {doc["kind"] for doc in plan.manifests} == {"Deployment", "PersistentVolumeClaim"}
    skipped = {(kind, name) for kind, names in plan.skipped.items() for name in names}
    secrets = {doc["metadata"]["name"] for doc in docs if doc["kind"] == "Secret"}
    rendered_objects = {(doc["kind"], doc["metadata"]["name"]) for doc in docs}
    played = {("Deployment", "imgsel-check-triton"), ("StatefulSet", "imgsel-check-postgresql")}
    played |= {("Deployment", "imgsel-check-gateway")} | {("Secret", name) for name in secrets}
    assert rendered_objects == skipped | played
    assert set(plan.skipped) == {"NetworkPolicy", "PodDisruptionBudget", "Service"}
    assert set(plan.secrets) == secrets


def test_service_names_resolve_to_loopback_where_the_gateway_looks_them_up(rendered, plan):
    _, docs = rendered
    hosts = {line.split()[1] for line in plan.hosts.splitlines()}
    assert all(line.startswith("127.0.0.1 ") for line in plan.hosts.splitlines())
    gateway = by_name(plan, "Deployment")["imgsel-check-gateway-0"]
    (container,) = gateway["spec"]["template"]["spec"]["containers"]
    triton_url = env_of(container)["IMGSEL_TRITON_GRPC_URL"]
    assert urlsplit(triton_url.replace("dns:///", "grpc://")).hostname in hosts
    database_secret = next(doc for doc in docs if doc["kind"] == "Secret" and "url" in doc["data"])
    assert urlsplit(base64.b64decode(database_secret["data"]["url"]).decode()).hostname in hosts


def test_every_container_reads_the_hosts_file(plan):
    for workload in plan.workloads:
        pod = workload["spec"]["template"]["spec"]
        assert {"name": "hosts", "hostPath": {"path": str(HOSTS), "type": "File"}} in pod["volumes"]
        for container in pod["containers"]:
            assert {"name": "hosts", "mountPath": "/etc/hosts", "readOnly": True} in container["volumeMounts"]


def test_the_statefulset_runs_as_a_deployment_with_its_claim_mounted(plan):
    database = by_name(plan, "Deployment")["imgsel-check-postgresql"]
    claims = by_name(plan, "PersistentVolumeClaim")
    assert list(claims) == ["data-imgsel-check-postgresql-0"]
    pod = database["spec"]["template"]["spec"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-imgsel-check-postgresql-0"}} in pod["volumes"]
    (container,) = pod["containers"]
    assert {"name": "data", "mountPath": "/var/lib/postgresql"} in container["volumeMounts"]
    assert container["image"] == deploy_check.IMAGES["postgresql"].tag
    assert env_of(container)["PGPORT"] == "15432"


def test_each_gateway_replica_listens_on_its_own_port(plan):
    assert plan.gateways == ["imgsel-check-gateway-0", "imgsel-check-gateway-1"]
    deployments = by_name(plan, "Deployment")
    for name, port in zip(plan.gateways, (18080, 18081)):
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert deployments[name]["spec"]["replicas"] == 1
        assert f"--port={port}" in container["args"]
        assert env_of(container)["IMGSEL_PORT"] == str(port)
        assert "ports" not in container  # podman 4.3 would map them, which the host network refuses
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["port"] == port


def test_emptydir_volumes_are_tmpfs_per_pod_owned_by_the_pods_user(plan):
    names = []
    for workload in plan.workloads:
        pod = workload["spec"]["template"]["spec"]
        empty = [volume["name"] for volume in pod["volumes"] if "emptyDir" in volume]
        assert all(name.startswith(workload["metadata"]["name"] + "-") for name in empty)
        mounted = {mount["name"] for container in pod["containers"] for mount in container["volumeMounts"]}
        assert set(empty) <= mounted
        names += empty
    assert len(names) == len(set(names))
    assert set(names) == set(plan.tmpfs_volumes) <= set(plan.volumes)
    assert plan.tmpfs_volumes["imgsel-check-postgresql-run"] == "uid=999,gid=999,mode=0777"
    assert plan.tmpfs_volumes["imgsel-check-gateway-1-tmp"] == "uid=10001,gid=10001,mode=0777"
    assert "data-imgsel-check-postgresql-0" in plan.volumes
    assert "imgsel-check-api-keys" in plan.volumes  # podman 4.3 makes a volume for a secret volume, named after it


def test_secrets_take_the_form_podman_reads_for_their_use(rendered, plan):
    _, docs = rendered
    keys = plan.secrets["imgsel-check-api-keys"]
    assert json.loads(keys)["data"]["api-keys"].startswith("curate:")
    database = json.loads(plan.secrets["imgsel-check-postgresql"])
    original = next(
        doc for doc in docs if doc["metadata"]["name"] == "imgsel-check-postgresql" and doc["kind"] == "Secret"
    )
    assert database == original["data"]
    for workload in plan.workloads:
        for volume in workload["spec"]["template"]["spec"]["volumes"]:
            if "secret" in volume:
                assert volume["secret"]["optional"] is False


def test_api_keys_come_from_the_generated_secret(rendered):
    _, docs = rendered
    keys = deploy_check.api_keys(docs)
    assert set(keys) == {"curate", "admin"} and all(len(key) == 40 for key in keys.values())


def test_an_unknown_kind_stops_the_check_instead_of_being_dropped(rendered):
    ports, docs = rendered
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "surprise"}, "spec": {}}
    with pytest.raises(deploy_check.StackFailed, match="Job surprise"):
        deploy_check.podman_plan([*docs, job], HOSTS, ports.gateways)


def test_a_secret_used_both_ways_is_refused(rendered):
    ports, docs = rendered
    docs = json.loads(json.dumps(docs))
    gateway = next(
        doc for doc in docs if doc["metadata"]["name"] == "imgsel-check-gateway" and doc["kind"] == "Deployment"
    )
    (container,) = gateway["spec"]["template"]["spec"]["containers"]
    reference = {"secretKeyRef": {"name": "imgsel-check-api-keys", "key": "api-keys"}}
    container["env"].append({"name": "KEYS", "valueFrom": reference})
    with pytest.raises(deploy_check.StackFailed, match="imgsel-check-api-keys"):
        deploy_check.podman_plan(docs, HOSTS, ports.gateways)


def test_the_replica_count_must_match_the_ports(rendered):
    ports, docs = rendered
    with pytest.raises(deploy_check.StackFailed, match="2 replicas rendered, 1 ports"):
        deploy_check.podman_plan(docs, HOSTS, ports.gateways[:1])


class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200 if self.path == "/ready" else 503)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.HTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()


def test_http_and_tcp_probes_are_evaluated_against_loopback_by_port_name(server):
    spec = {"ports": [{"name": "http", "containerPort": server}]}
    assert deploy_check.probe_passes({"httpGet": {"path": "/ready", "port": "http"}}, spec, "c")
    assert not deploy_check.probe_passes({"httpGet": {"path": "/not-ready", "port": server}}, spec, "c")
    assert deploy_check.probe_passes({"tcpSocket": {"port": "http"}}, spec, "c")
    (closed,) = deploy_check.free_ports(1)
    assert not deploy_check.probe_passes({"tcpSocket": {"port": closed}, "timeoutSeconds": 1}, spec, "c")


def test_free_ports_are_distinct_and_bindable_on_every_address():
    ports = deploy_check.free_ports(6)
    assert len(set(ports)) == 6
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("", port))


def test_an_exec_probe_past_its_timeout_is_not_ready_not_a_failed_check(monkeypatch):
    """As kubelet counts it: a probe command that hangs (pg_isready in a busy container) means "not ready yet"."""
    calls = []

    def hanging_podman(*args, check=True, timeout=None):
        calls.append(timeout)
        raise subprocess.TimeoutExpired(["podman", *args], timeout)

    monkeypatch.setattr(deploy_check, "podman", hanging_podman)
    probe = {"exec": {"command": ["pg_isready"]}, "timeoutSeconds": 3}
    assert not deploy_check.probe_passes(probe, {}, "imgsel-check-postgresql-pod-0-postgresql")
    assert calls == [8]
