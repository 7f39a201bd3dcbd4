"""The Helm chart checked with real tools: helm v4.3.1 (`make helm`, tools/helm.py) lints and renders it with several
value sets, its values.schema.json refuses bad values, every rendered object passes the strict Kubernetes schemas of
1.28-1.31 (kubernetes-validate), and the rendered YAML is checked for what breaks deployments: probes and ports,
GPU limits, shutdown timing, inlined secrets, unpinned images, security contexts, network reachability."""

from __future__ import annotations

import re

import kubernetes_validate
import pytest

from tests.helm.chart import (
    ALLOWED_CRD_KINDS,
    CHART,
    HELM,
    NAMESPACE,
    PROMETHEUS_OPERATOR_API,
    RELEASE,
    SUPPORTED_KUBERNETES,
    VALUE_SETS,
    argument,
    chart_file,
    container,
    containers,
    helm,
    named,
    objects,
    pod_specs,
    port_number,
    render,
    template,
)

pytestmark = pytest.mark.skipif(not HELM.is_file(), reason=f"no helm at {HELM}: run `make helm` (tools/helm.py)")

GPU_RESOURCE = "nvidia.com/gpu"
DEFAULTS = VALUE_SETS["defaults"]
CPU = VALUE_SETS["cpu"]


@pytest.mark.parametrize("values", [(), (f"--values={CHART / 'values-cpu.yaml'}",)], ids=["defaults", "cpu"])
def test_lint_strict_passes(values):
    result = helm("lint", "--strict", str(CHART), *values)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("kube_version", SUPPORTED_KUBERNETES)
@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_rendered_object_passes_the_strict_kubernetes_schema(value_set, kube_version):
    docs = render(VALUE_SETS[value_set], kube_version)
    assert docs
    for doc in docs:
        where = f"{doc['kind']}/{doc['metadata']['name']} ({value_set}, Kubernetes {kube_version})"
        if doc["kind"] in ALLOWED_CRD_KINDS:
            assert doc["apiVersion"] == PROMETHEUS_OPERATOR_API, where
            continue
        try:
            kubernetes_validate.validate(doc, kube_version, strict=True)
        except kubernetes_validate.SchemaNotFoundError as error:
            pytest.fail(f"{where}: unknown kind, not in the allowed CRDs {sorted(ALLOWED_CRD_KINDS)}: {error.message}")
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{where}: {error.message} at {'/'.join(str(p) for p in error.absolute_path)}")


def test_an_unknown_kind_is_refused_by_the_validation():
    """The check above fails on kinds outside the allow-list rather than skipping them (as the CLI would)."""
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {}}, "1.30", True)


def test_kubernetes_older_than_1_28_is_refused():
    result = template(kube_version="1.27")
    assert result.returncode != 0 and "kubeVersion" in result.stderr


BAD_VALUES = {
    "unknown top-level key": (("--set=replicaCount=3",), "additional properties 'replicaCount' not allowed"),
    "unknown nested key": (("--set=triton.gpus=2",), "additional properties 'gpus' not allowed"),
    "replicas as text": (("--set-string=triton.replicas=two",), "want integer"),
    "latest tag": (("--set=gateway.image.tag=latest",), "'not' failed"),
    "repository not in object storage": (
        ("--set=triton.modelRepository.source=objectStorage", "--set=triton.modelRepository.objectStorage.url=ftp://x"),
        "does not match pattern",
    ),
    "unknown repository source": (("--set=triton.modelRepository.source=nfs",), "value must be one of"),
    "database URL inlined in env": (
        ("--set=gateway.env.IMGSEL_DATABASE_URL=postgresql://imgsel:hunter2@db:5432/imgsel",),
        "invalid propertyName 'IMGSEL_DATABASE_URL'",
    ),
    "API keys inlined in env": (("--set=gateway.env.IMGSEL_API_KEYS=admin:k1",), "invalid propertyName"),
    "secret in Triton env": (("--set=triton.env.AWS_SECRET_ACCESS_KEY=abc",), "invalid propertyName"),
    "non-IMGSEL gateway setting": (("--set=gateway.env.DEBUG=1",), "invalid propertyName"),
    "root allowed": (("--set=gateway.podSecurityContext.runAsNonRoot=false",), "value must be true"),
    "writable gateway root filesystem": (
        ("--set=gateway.securityContext.readOnlyRootFilesystem=false",),
        "value must be true",
    ),
    "privilege escalation": (("--set=triton.securityContext.allowPrivilegeEscalation=true",), "value must be false"),
    "negative GPU count": (("--set=triton.gpu.count=-1",), "minimum"),
    "port out of range": (("--set=gateway.port=70000",), "maximum"),
    "bad quantity": (("--set=triton.shmSizeLimit=lots",), "does not match pattern"),
}


@pytest.mark.parametrize("case", BAD_VALUES)
def test_bad_values_fail_the_schema(case):
    args, message = BAD_VALUES[case]
    result = template(*args)
    assert result.returncode != 0, f"{case}: rendered although the schema should refuse it"
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr
    assert message in result.stderr, result.stderr


REFUSED_COMBINATIONS = {
    "Triton grace period not past preStop + exit timeout": (
        ("--set=triton.terminationGracePeriodSeconds=40",),
        "must be longer than triton.preStopSleepSeconds (10) + triton.exitTimeoutSeconds (30)",
    ),
    "gateway grace period too short": (("--set=gateway.terminationGracePeriodSeconds=15",), "gateway.termination"),
    "open gateway without saying so": (("--set=gateway.apiKeys.existingSecret=",), "gateway.allowUnauthenticated"),
    "no database": (("--set=gateway.database.existingSecret=",), "the gateway needs a database"),
    "object storage without URL": (("--set=triton.modelRepository.source=objectStorage",), "objectStorage.url"),
    "engine build on object storage": (
        (
            "--set=triton.modelRepository.source=objectStorage",
            "--set=triton.modelRepository.objectStorage.url=s3://b/r",
        ),
        "triton.engineBuild needs the repository on a PVC",
    ),
    "engine build without a GPU": (("--set=triton.gpu.count=0",), "triton.engineBuild needs a GPU"),
    "both monitor kinds": (
        ("--set=monitoring.serviceMonitor.enabled=true", "--set=monitoring.podMonitor.enabled=true"),
        "not both",
    ),
}


@pytest.mark.parametrize("case", REFUSED_COMBINATIONS)
def test_contradictory_values_stop_the_render_with_the_reason(case):
    args, message = REFUSED_COMBINATIONS[case]
    result = template(*args)
    assert result.returncode != 0 and message in result.stderr, result.stderr


@pytest.mark.parametrize("value_set", ["defaults", "cpu"])
def test_probes_are_present_and_point_at_the_serving_ports(value_set):
    docs = render(VALUE_SETS[value_set])
    triton = container(docs, "triton")
    http = port_number(triton, "http")
    assert http == int(argument(triton, "--http-port"))
    expected = {
        "startupProbe": "/v2/health/ready",
        "livenessProbe": "/v2/health/live",
        "readinessProbe": "/v2/health/ready",
    }
    for probe, path in expected.items():
        assert triton[probe]["httpGet"]["path"] == path
        assert port_number(triton, triton[probe]["httpGet"]["port"]) == http
    startup = triton["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 180, "model loading needs minutes, not seconds"
    assert {port_number(triton, p) for p in ("http", "grpc", "metrics")} == {8000, 8001, 8002}

    gateway = container(docs, "gateway")
    served = port_number(gateway, "http")
    assert served == int(argument(gateway, "--port"))
    expected = {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    for probe, path in expected.items():
        assert gateway[probe]["httpGet"]["path"] == path
        assert port_number(gateway, gateway[probe]["httpGet"]["port"]) == served


@pytest.mark.parametrize("value_set", ["defaults", "cpu"])
def test_services_target_named_container_ports(value_set):
    docs = render(VALUE_SETS[value_set])
    for component in ("triton", "gateway"):
        ports = {p["name"] for p in container(docs, component)["ports"]}
        service = named(docs, "Service", component)
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports


def test_the_gateway_finds_triton_through_its_service():
    docs = render(DEFAULTS)
    env = {e["name"]: e for e in container(docs, "gateway")["env"]}
    service = named(docs, "Service", "triton")
    grpc = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc")
    headless = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"].endswith("-headless"))
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["selector"] == service["spec"]["selector"]
    assert headless["metadata"]["name"] == f"{service['metadata']['name']}-headless"
    # Round-robin over every ready Triton pod (gateway.clients.triton sets the gRPC round_robin policy).
    assert env["IMGSEL_TRITON_GRPC_URL"]["value"] == (
        f"dns:///{headless['metadata']['name']}.{NAMESPACE}.svc.cluster.local:{grpc}"
    )
    pinned = render((*DEFAULTS, "--set", "gateway.tritonUrl=127.0.0.1:9001"))
    assert {e["name"]: e for e in container(pinned, "gateway")["env"]}["IMGSEL_TRITON_GRPC_URL"]["value"] == (
        "127.0.0.1:9001"
    )
    assert env["IMGSEL_HOST"]["value"] == "0.0.0.0" and argument(container(docs, "gateway"), "--host") == "0.0.0.0"


def gpu_limits(spec: dict) -> dict[str, int]:
    return {c["name"]: c.get("resources", {}).get("limits", {}).get(GPU_RESOURCE) for c in containers(spec)}


@pytest.mark.parametrize("value_set", [name for name in VALUE_SETS if name != "cpu"])
def test_gpu_limits_on_triton_only(value_set):
    docs = render(VALUE_SETS[value_set])
    for name, spec in pod_specs(docs):
        limits = gpu_limits(spec)
        if name == f"{RELEASE}-triton":
            assert all(count == 1 for count in limits.values()), limits  # the engine build runs on the same GPU
        else:
            assert set(limits.values()) == {None}, f"{name} asks for a GPU: {limits}"


def test_the_cpu_profile_asks_for_no_gpu_anywhere():
    docs = render(CPU)
    assert GPU_RESOURCE not in str(docs)
    triton = named(docs, "Deployment", "triton")["spec"]["template"]["spec"]
    assert "tolerations" not in triton and "affinity" not in triton and "initContainers" not in triton
    assert "--allow-gpu-metrics=false" in triton["containers"][0]["args"]


def test_cpu_profile_runs_the_baked_repository_and_its_own_database():
    docs = render(CPU)
    triton = container(docs, "triton")
    assert "command" not in triton, "the cpu image's entrypoint starts its tritonserver"
    assert argument(triton, "--model-repository") == "/opt/imgsel/model_repository"
    assert not objects(docs, "PersistentVolumeClaim")
    database = named(docs, "StatefulSet", "postgresql")
    assert database["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "10Gi"
    url = next(e for e in container(docs, "gateway")["env"] if e["name"] == "IMGSEL_DATABASE_URL")
    assert url["valueFrom"]["secretKeyRef"] == {"name": f"{RELEASE}-postgresql", "key": "url"}
    assert {s["metadata"]["name"] for s in objects(docs, "Secret")} == {f"{RELEASE}-postgresql", f"{RELEASE}-api-keys"}


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_grace_period_outlasts_prestop_and_the_exit_timeout(value_set):
    docs = render(VALUE_SETS[value_set])
    for component in ("triton", "gateway"):
        spec = named(docs, "Deployment", component)["spec"]["template"]["spec"]
        main = container(docs, component)
        command = main["lifecycle"]["preStop"]["exec"]["command"]
        assert command[0] == "sleep"
        drain = int(argument(main, "--exit-timeout-secs" if component == "triton" else "--timeout-graceful-shutdown"))
        assert spec["terminationGracePeriodSeconds"] > int(command[1]) + drain, component


SECRET_NAMES = re.compile(r"(PASSWORD|SECRET|TOKEN|ACCESS_KEY|DATABASE_URL|API_KEYS$|CREDENTIALS$)")
SECRET_VALUES = re.compile(r"(postgres(ql)?://[^/@\s]*:[^/@\s]*@|(curate|admin):\w|-----BEGIN)")


def secret_mount_paths(spec: dict, each: dict) -> list[str]:
    secret_volumes = {v["name"] for v in spec.get("volumes", []) if "secret" in v}
    return [m["mountPath"] for m in each.get("volumeMounts", []) if m["name"] in secret_volumes]


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_secrets_are_referenced_never_inlined(value_set):
    docs = render(VALUE_SETS[value_set])
    for name, spec in pod_specs(docs):
        for each in containers(spec):
            mounted = secret_mount_paths(spec, each)
            for env in each.get("env", []):
                where = f"{name}/{each['name']} {env['name']}"
                if "value" in env:
                    on_secret = any(env["value"].startswith(path + "/") for path in mounted)
                    assert on_secret or not SECRET_NAMES.search(env["name"]), f"{where}: a secret as a plain value"
                    assert not SECRET_VALUES.search(env["value"]), f"{where} holds a secret value"
                elif SECRET_NAMES.search(env["name"]):
                    assert "secretKeyRef" in env["valueFrom"], where
    gateway = {e["name"]: e for e in container(docs, "gateway")["env"]}
    assert "secretKeyRef" in gateway["IMGSEL_DATABASE_URL"]["valueFrom"]
    assert "IMGSEL_API_KEYS" not in gateway
    gateway_spec = named(docs, "Deployment", "gateway")["spec"]["template"]["spec"]
    mounted = secret_mount_paths(gateway_spec, container(docs, "gateway"))
    keys_file = gateway["IMGSEL_API_KEYS_FILE"]["value"]
    assert any(keys_file.startswith(path + "/") for path in mounted), "IMGSEL_API_KEYS_FILE not on a mounted Secret"


def test_object_storage_credentials_come_from_the_named_secret():
    s3 = container(render(VALUE_SETS["object-storage-s3"]), "triton")
    assert s3["envFrom"] == [{"secretRef": {"name": "imgsel-s3"}}]
    assert argument(s3, "--model-repository") == "s3://catalog-models/imgsel/gpu"
    gcs_docs = render(VALUE_SETS["object-storage-gcs"])
    gcs = container(gcs_docs, "triton")
    credentials = next(e for e in gcs["env"] if e["name"] == "GOOGLE_APPLICATION_CREDENTIALS")["value"]
    assert credentials == "/var/run/secrets/imgsel/gcs/credentials.json"
    volumes = named(gcs_docs, "Deployment", "triton")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "gcs-credentials", "secret": {"secretName": "imgsel-gcs", "defaultMode": 0o440}} in volumes
    for docs in (render(VALUE_SETS["object-storage-s3"]), gcs_docs):
        spec = named(docs, "Deployment", "triton")["spec"]["template"]["spec"]
        assert "initContainers" not in spec and not any("persistentVolumeClaim" in v for v in spec["volumes"])


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_image_is_pinned(value_set):
    for name, spec in pod_specs(render(VALUE_SETS[value_set])):
        for each in containers(spec):
            image = each["image"]
            repository, _, tag = image.rpartition(":")
            assert repository and "/" not in tag and tag not in ("", "latest"), f"{name}/{each['name']}: {image}"


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_pods_and_containers_are_hardened(value_set):
    for name, spec in pod_specs(render(VALUE_SETS[value_set])):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["automountServiceAccountToken"] is False, name
        for each in containers(spec):
            context = each["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, f"{name}/{each['name']}"
            assert "ALL" in context["capabilities"]["drop"], f"{name}/{each['name']}"
            assert not context.get("privileged"), f"{name}/{each['name']}"
    assert container(render(VALUE_SETS[value_set]), "gateway")["securityContext"]["readOnlyRootFilesystem"] is True


def test_triton_has_a_memory_backed_dev_shm():
    docs = render(DEFAULTS)
    spec = named(docs, "Deployment", "triton")["spec"]["template"]["spec"]
    shm = next(v for v in spec["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": "2Gi"}
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container(docs, "triton")["volumeMounts"]


def test_engine_build_runs_the_chart_script_on_the_repository_volume_before_triton():
    docs = render(DEFAULTS)
    build = container(docs, "triton", "engine-build")
    assert build["image"] == container(docs, "triton")["image"], "trtexec must match the TensorRT that serves the plans"
    assert argument(build, "--source") == "/models" and argument(build, "--cache") == "/models/.engine-cache"
    assert "--fp16" in build["args"]
    assert argument(container(docs, "triton"), "--model-repository") == "/serving"
    script = named(docs, "ConfigMap", "engine-build")["data"]["engine_build.py"]
    assert script == chart_file("files/engine_build.py").read_text().rstrip("\n")
    triton_mounts = {m["name"]: m for m in container(docs, "triton")["volumeMounts"]}
    assert triton_mounts["model-repository"]["readOnly"] is True and triton_mounts["serving-repository"]["readOnly"]
    assert not any(m.get("readOnly") for m in build["volumeMounts"] if m["name"] == "model-repository")


def test_gpu_product_affinity_joins_the_users_node_affinity():
    affinity = (
        '--set-json=triton.affinity={"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":'
        '{"nodeSelectorTerms":[{"matchExpressions":[{"key":"pool","operator":"In","values":["inference"]}]}]}}}'
    )
    docs = render((*VALUE_SETS["autoscaling"], affinity))
    spec = named(docs, "Deployment", "triton")["spec"]["template"]["spec"]
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [
        {
            "matchExpressions": [
                {"key": "pool", "operator": "In", "values": ["inference"]},
                {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-L4", "NVIDIA-A10G"]},
            ]
        }
    ]
    assert "affinity" not in named(docs, "Deployment", "gateway")["spec"]["template"]["spec"]


def test_triton_scales_on_a_pods_metric_from_its_queue_to_compute_ratio():
    docs = render(VALUE_SETS["autoscaling"])
    hpa = named(docs, "HorizontalPodAutoscaler", "triton")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == f"{RELEASE}-triton"
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods" and metric["pods"]["metric"]["name"] == "imgsel_triton_queue_compute_ratio"
    assert "replicas" not in named(docs, "Deployment", "triton")["spec"], "the HPA owns the replica count"
    rule = named(docs, "ConfigMap", "prometheus-adapter-rule")["data"]["rules.yaml"]
    assert "<<.LabelMatchers>>" in rule and "<<.GroupBy>>" in rule
    assert "nv_inference_queue_duration_us" in rule and "clamp_min" in rule
    assert NAMESPACE not in rule and "namespace=" not in rule, "a namespace written in the adapter rule"


def test_gateway_scales_on_cpu():
    hpa = named(render(DEFAULTS), "HorizontalPodAutoscaler", "gateway")
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["type"] == "Utilization"
    assert "replicas" not in named(render(DEFAULTS), "Deployment", "gateway")["spec"]


def test_monitoring_objects_need_the_value_and_the_prometheus_operator_api():
    without_api = render(tuple(a for a in VALUE_SETS["monitoring"] if not a.startswith("--api-versions")))
    assert not [d for d in without_api if d["kind"] in ALLOWED_CRD_KINDS]
    assert not [d for d in render(DEFAULTS) if d["kind"] in ALLOWED_CRD_KINDS]
    docs = render(VALUE_SETS["monitoring"])
    monitors = objects(docs, "ServiceMonitor")
    assert {m["metadata"]["name"] for m in monitors} == {f"{RELEASE}-triton", f"{RELEASE}-gateway"}
    assert all(m["metadata"]["labels"]["release"] == "kube-prometheus-stack" for m in monitors)
    ports = {m["metadata"]["name"]: m["spec"]["endpoints"][0]["port"] for m in monitors}
    assert ports == {f"{RELEASE}-triton": "metrics", f"{RELEASE}-gateway": "http"}
    (rule,) = objects(docs, "PrometheusRule")
    recorded = rule["spec"]["groups"][0]["rules"][0]
    assert recorded["record"] == "imgsel:triton_queue_compute_ratio"
    assert f'namespace="{NAMESPACE}"' in recorded["expr"], "the release's namespace, not a hard-coded one"
    assert {m["metadata"]["name"] for m in objects(render(VALUE_SETS["monitoring-podmonitor"]), "PodMonitor")} == {
        f"{RELEASE}-triton",
        f"{RELEASE}-gateway",
    }


@pytest.mark.parametrize("value_set", ["defaults", "cpu"])
def test_network_policy_admits_only_the_gateway_to_triton(value_set):
    docs = render(VALUE_SETS[value_set])
    policy = named(docs, "NetworkPolicy", "triton")
    gateway_labels = named(docs, "Deployment", "gateway")["spec"]["selector"]["matchLabels"]
    for rule in policy["spec"]["ingress"]:
        ports = {p["port"] for p in rule["ports"]}
        if ports & {"http", "grpc"}:
            assert rule["from"] == [{"podSelector": {"matchLabels": gateway_labels}}]
        else:
            assert ports == {"metrics"}
    gateway = named(docs, "NetworkPolicy", "gateway")
    assert gateway["spec"]["policyTypes"] == ["Ingress", "Egress"]
    fetch = [r for r in gateway["spec"]["egress"] if any("ipBlock" in t for t in r.get("to", []))]
    assert fetch and "10.0.0.0/8" in fetch[0]["to"][0]["ipBlock"]["except"]
    if value_set == "cpu":
        database = named(docs, "NetworkPolicy", "postgresql")
        assert database["spec"]["ingress"][0]["from"] == [{"podSelector": {"matchLabels": gateway_labels}}]


def test_disruption_budgets_cover_triton_and_the_gateway():
    docs = render(DEFAULTS)
    for component in ("triton", "gateway"):
        budget = named(docs, "PodDisruptionBudget", component)
        labels = named(docs, "Deployment", component)["spec"]["selector"]["matchLabels"]
        assert budget["spec"]["selector"]["matchLabels"] == labels and budget["spec"]["maxUnavailable"] == 1


def test_the_chart_has_no_remote_dependencies():
    chart = (CHART / "Chart.yaml").read_text()
    assert "dependencies" not in chart and not (CHART / "Chart.lock").exists()
