"""Build the container images of the chart's cpu profile with podman, without any registry (`make images`).

    python -m tools.images [all]          # tools, base image, wheelhouse, the three images, then checks them
    python -m tools.images install|base|wheelhouse
    python -m tools.images build [gateway|triton-cpu|postgresql ...] [--no-cache] [--json FILE]

- `install`: podman, mmdebstrap and runc from Debian packages (apt-get, as root) when one is missing.
- `base`: a Debian bookworm root filesystem made by mmdebstrap (Python 3.11, venv, libpython for Triton's python
  backend stub) imported as localhost/imgsel-base:bookworm. No image is pulled: nothing here reaches a registry.
- `wheelhouse`: every wheel of requirements.lock (and the nvidia-pytriton wheel the Triton image unpacks) under
  .cache/images/wheelhouse, built once with `pip wheel --no-deps`. Containers do not trust this machine's TLS set-up,
  so builds install from this folder (mounted as the build context `wheelhouse`), never from an index.
- `build`: docker/Dockerfile (gateway), docker/triton-cpu.Dockerfile, docker/postgresql.Dockerfile with cached
  layers; then each image is checked (gateway: every module imports, no compiler, only locked distributions).

podman runs with runc, the cgroupfs manager and no default ulimits (crun cannot set RLIMIT_NPROC on these machines'
hybrid cgroups) through a containers.conf written under .cache/images; builds use the host network.

Size: a little over ~400 lines because each image's post-build check sits beside the build steps it verifies.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CACHE = PROJECT_ROOT / ".cache" / "images"
WHEELHOUSE = CACHE / "wheelhouse"
CONTAINERS_CONF = CACHE / "containers.conf"
DOCKER_DIR = PROJECT_ROOT / "docker"
IGNORE_FILE = DOCKER_DIR / "Dockerfile.dockerignore"
LOCK = PROJECT_ROOT / "requirements.lock"

DEBIAN_PACKAGES = ("podman", "mmdebstrap", "runc")
DEBIAN_MIRROR = "http://deb.debian.org/debian"
BASE_IMAGE = "localhost/imgsel-base:bookworm"
# libpython3.11: the Triton python backend stub links it (Debian's python3.11 binary is static).
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "libpython3.11")
# Documentation, manuals and translations are left out of the base (about 40 MB that no image needs).
BASE_PATH_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*")
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CONTAINERS_CONF_TEXT = """\
# Written by tools/images.py: crun cannot set RLIMIT_NPROC on these machines (hybrid cgroups), so podman runs with
# runc (--runtime runc on every call), the cgroupfs manager and no default ulimits.
[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
"""
# Wheels the images need beyond the lock: the Triton image unpacks tritonserver from nvidia-pytriton (make triton's
# wheel); `pip freeze` leaves out wheel and setuptools, which astunparse (DALI) and torch declare as requirements
# (the versions of the venv the lock was frozen from).
EXTRA_WHEELS = ("nvidia-pytriton==0.7.0", "wheel==0.48.0", "setuptools==84.2.1")


def project_version() -> str:
    with open(PROJECT_ROOT / "pyproject.toml", "rb") as stream:
        return tomllib.load(stream)["project"]["version"]


@dataclass(frozen=True)
class Image:
    name: str
    dockerfile: Path
    tag: str
    # The user the image runs as (checked after the build; the chart's podSecurityContext expects it).
    uid: int


VERSION = project_version()
IMAGES = {
    image.name: image
    for image in (
        Image("gateway", DOCKER_DIR / "Dockerfile", f"localhost/imgsel-gateway:{VERSION}", 10001),
        Image("triton-cpu", DOCKER_DIR / "triton-cpu.Dockerfile", f"localhost/imgsel-triton-cpu:{VERSION}", 1000),
        Image(
            "postgresql", DOCKER_DIR / "postgresql.Dockerfile", "localhost/imgsel-postgresql:18.4-pgvector0.8.5", 999
        ),
    )
}


class ImageError(RuntimeError):
    pass


def podman_env() -> dict[str, str]:
    if not CONTAINERS_CONF.is_file() or CONTAINERS_CONF.read_text() != CONTAINERS_CONF_TEXT:
        CONTAINERS_CONF.parent.mkdir(parents=True, exist_ok=True)
        CONTAINERS_CONF.write_text(CONTAINERS_CONF_TEXT)
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman_command(*args: str) -> list[str]:
    return ["podman", "--runtime", "runc", *args]


def podman(*args: str, check: bool = True, capture: bool = True, timeout: float | None = None):
    """Runs podman with this project's settings; returns the CompletedProcess (stdout/stderr as text)."""
    result = subprocess.run(podman_command(*args), env=podman_env(), capture_output=capture, text=True, timeout=timeout)
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip()[-3000:] if capture else ""
        raise ImageError(f"podman {' '.join(args[:3])} ... failed ({result.returncode}): {detail}")
    return result


def missing_tools() -> list[str]:
    return [package for package in DEBIAN_PACKAGES if shutil.which(package) is None]


def install_tools() -> None:
    """apt-get install the Debian packages that are missing (the project installs what it needs)."""
    missing = missing_tools()
    if not missing:
        return
    if os.geteuid() != 0:
        raise ImageError(f"{', '.join(missing)} missing: run `sudo apt-get install -y {' '.join(DEBIAN_PACKAGES)}`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-q", *DEBIAN_PACKAGES], check=True, env=env)


def image_exists(tag: str) -> bool:
    return podman("image", "exists", tag, check=False).returncode == 0


def mmdebstrap_command(rootfs: Path, mirror: str = DEBIAN_MIRROR) -> list[str]:
    excludes = [f"--dpkgopt=path-exclude={pattern}" for pattern in BASE_PATH_EXCLUDES]
    # The copyright files stay: they are the licences of what the image ships.
    keep = "--dpkgopt=path-include=/usr/share/doc/*/copyright"
    return [
        "mmdebstrap",
        "--variant=minbase",
        f"--include={','.join(BASE_PACKAGES)}",
        *excludes,
        keep,
        "bookworm",
        str(rootfs),
        mirror,
    ]


def base_recipe() -> str:
    """What the base image is made of; stored as its label, so a changed package list makes it again."""
    return " ".join(mmdebstrap_command(Path("rootfs.tar"))[1:])


def base_is_current() -> bool:
    if not image_exists(BASE_IMAGE):
        return False
    label = podman("image", "inspect", "--format", '{{index .Labels "imgsel.base.recipe"}}', BASE_IMAGE).stdout
    return label.strip() == base_recipe()


def build_base(force: bool = False) -> float | None:
    """localhost/imgsel-base:bookworm from mmdebstrap; returns the seconds it took, None when it was already there."""
    if base_is_current() and not force:
        return None
    started, started_at = time.monotonic(), int(time.time())
    CACHE.mkdir(parents=True, exist_ok=True)
    rootfs = CACHE / "base-rootfs.tar"
    subprocess.run(mmdebstrap_command(rootfs), check=True)
    podman(
        "import",
        "--change", f"ENV PATH={BASE_PATH}",
        "--change", "ENV LANG=C.UTF-8",
        "--change", 'CMD ["/bin/bash"]',
        "--change", f"LABEL imgsel.base.recipe={json.dumps(base_recipe())}",
        "--message", f"mmdebstrap --variant=minbase bookworm with {', '.join(BASE_PACKAGES)}",
        str(rootfs),
        BASE_IMAGE,
    )  # fmt: skip
    rootfs.unlink()
    # Everything built on the previous base is now unreachable garbage (podman keeps build stages as untagged images;
    # they cannot be pruned in general without losing the layer cache, but these can).
    podman("image", "prune", "--force", "--filter", f"until={started_at}")
    return time.monotonic() - started


def image_pins() -> dict[str, str]:
    """What an image's Python environment may hold: the lock's pins and EXTRA_WHEELS."""
    return {**lock_pins(), **{normalise(r.split("==")[0]): r.split("==")[1] for r in EXTRA_WHEELS}}


def lock_pins(lock: Path = LOCK) -> dict[str, str]:
    """requirements.lock as {normalised name: version}."""
    pins = {}
    for line in lock.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[normalise(name)] = version.strip()
    return pins


def normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def wheel_name(filename: str) -> tuple[str, str]:
    """(normalised distribution name, version) of a wheel file name."""
    name, version = filename.split("-")[:2]
    return normalise(name), version


def missing_wheels(wheelhouse: Path = WHEELHOUSE, lock: Path = LOCK) -> list[str]:
    """Requirements (name==version) of the lock and EXTRA_WHEELS without a wheel in `wheelhouse`."""
    present = {wheel_name(path.name) for path in wheelhouse.glob("*.whl")}
    wanted = {**lock_pins(lock), **{normalise(r.split("==")[0]): r.split("==")[1] for r in EXTRA_WHEELS}}
    # A local version label (torch 2.13.0+cpu) satisfies the lock's 2.13.0.
    have = {(name, version.split("+")[0]) for name, version in present}
    return [f"{name}=={version}" for name, version in sorted(wanted.items()) if (name, version) not in have]


def build_wheelhouse(wheelhouse: Path = WHEELHOUSE) -> float | None:
    """Wheels of every pinned requirement (sdists built into wheels on the host, so builds need no compiler)."""
    missing = missing_wheels(wheelhouse)
    if not missing:
        return None
    started = time.monotonic()
    wheelhouse.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheelhouse), *missing], check=True
    )
    still = missing_wheels(wheelhouse)
    if still:
        raise ImageError(f"no wheel in {wheelhouse} for {', '.join(still)}")
    return time.monotonic() - started


def build_command(image: Image, no_cache: bool = False) -> list[str]:
    return podman_command(
        "build",
        "--layers",
        *(["--no-cache"] if no_cache else []),
        "--network", "host",
        "--ignorefile", str(IGNORE_FILE),
        "--build-context", f"wheelhouse={WHEELHOUSE}",
        "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
        "--file", str(image.dockerfile),
        "--tag", image.tag,
        str(PROJECT_ROOT),
    )  # fmt: skip


def image_size(tag: str) -> int:
    return int(podman("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())


def build_image(image: Image, no_cache: bool = False) -> dict:
    """Builds one image (podman's output streams through); returns its tag, build seconds and size in bytes."""
    started = time.monotonic()
    result = subprocess.run(build_command(image, no_cache), env=podman_env(), cwd=PROJECT_ROOT)
    if result.returncode != 0:
        raise ImageError(f"building {image.tag} from {image.dockerfile.relative_to(PROJECT_ROOT)} failed")
    seconds = time.monotonic() - started
    return {"image": image.name, "tag": image.tag, "build_s": round(seconds, 1), "size_bytes": image_size(image.tag)}


# Runs inside an image: every importable module of the given packages, and the installed distributions.
INSPECT_PYTHON = """
import importlib, importlib.metadata as md, json, pkgutil, sys
failed = {}
for package in sys.argv[1:]:
    for module in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
        try:
            importlib.import_module(module.name)
        except Exception as error:
            failed[module.name] = repr(error)
dists = {d.metadata["Name"]: d.version for d in md.distributions()}
print(json.dumps({"failed": failed, "distributions": dists}))
"""
BUILD_TOOLS = ("gcc", "cc", "c++", "make", "ld", "as", "pip", "pip3")


def run_in(tag: str, *command: str, env: dict[str, str] | None = None) -> str:
    """Runs a command in a throw-away container with a read-only root, as the image's user, offline, instead of the
    image's entrypoint (the checks look at the image's files, not at its start-up)."""
    args = ["run", "--rm", "--read-only", "--network", "none", "--tmpfs", "/tmp", "--entrypoint", ""]
    for name, value in (env or {}).items():
        args += ["--env", f"{name}={value}"]
    return podman(*args, tag, *command).stdout


def check_gateway(image: Image = IMAGES["gateway"]) -> dict:
    """The gateway image imports every module of its packages (as its user, read-only root), holds only locked
    distributions at their pinned versions, and no compiler, linker, make or pip (dpkg and apt of the Debian base
    stay: the image's user can write nowhere but /tmp)."""
    # gateway.app refuses, at import, to serve 0.0.0.0 (the image's IMGSEL_HOST) without keys: an import check only.
    open_for_import = {"IMGSEL_ALLOW_UNAUTHENTICATED": "true"}
    packages = ("gateway", "contract", "runtime", "preprocessing")
    found = json.loads(run_in(image.tag, "python", "-c", INSPECT_PYTHON, *packages, env=open_for_import))
    # preprocessing.pipeline/runner/resampling import DALI or torch: they belong to the Triton image's models.
    triton_only = ("preprocessing.pipeline", "preprocessing.runner", "preprocessing.resampling")
    failed = {m: e for m, e in found["failed"].items() if not m.startswith(triton_only)}
    pins = image_pins()
    unlocked = {n: v for n, v in found["distributions"].items() if pins.get(normalise(n)) != v.split("+")[0]}
    tools = run_in(image.tag, "sh", "-c", f"for t in {' '.join(BUILD_TOOLS)}; do command -v $t; done; true").split()
    user = run_in(image.tag, "id", "-u").strip()
    problems = []
    if failed:
        problems.append(f"modules that do not import: {failed}")
    if unlocked:
        problems.append(f"distributions not pinned so in requirements.lock: {unlocked}")
    if tools:
        problems.append(f"build or install tools present: {tools}")
    if user != str(image.uid):
        problems.append(f"runs as uid {user}, expected {image.uid}")
    if problems:
        raise ImageError(f"{image.tag}: " + "; ".join(problems))
    return {"distributions": len(found["distributions"]), "uid": int(user)}


def check_python_env(image: Image, python: str) -> dict:
    """Only locked distributions, at their pinned versions, in the image's model environment."""
    found = json.loads(run_in(image.tag, python, "-c", INSPECT_PYTHON))
    pins = image_pins()
    unlocked = {n: v for n, v in found["distributions"].items() if pins.get(normalise(n)) != v.split("+")[0]}
    if unlocked:
        raise ImageError(f"{image.tag}: distributions not pinned so in requirements.lock: {unlocked}")
    return {"distributions": len(found["distributions"])}


def check_uid(image: Image) -> dict:
    user = run_in(image.tag, "id", "-u").strip()
    if user != str(image.uid):
        raise ImageError(f"{image.tag} runs as uid {user}, expected {image.uid}")
    return {"uid": int(user)}


POSTGRES_VERSION = "18.4"
PGVECTOR_VERSION = "0.8.5"


def check_postgresql(image: Image) -> dict:
    """The server and pgvector versions the state store is tested with, and the probe's pg_isready on the PATH."""
    server = run_in(image.tag, "postgres", "--version").strip()
    control = run_in(image.tag, "sh", "-c", 'cat "$(pg_config --sharedir)/extension/vector.control"')
    vector = next((line.split("'")[1] for line in control.splitlines() if line.startswith("default_version")), "")
    run_in(image.tag, "sh", "-c", "command -v pg_isready psql initdb")
    if not server.endswith(POSTGRES_VERSION) or vector != PGVECTOR_VERSION:
        raise ImageError(
            f"{image.tag}: {server!r} with pgvector {vector!r}, expected {POSTGRES_VERSION} / {PGVECTOR_VERSION}"
        )
    return {**check_uid(image), "postgres": POSTGRES_VERSION, "pgvector": vector}


def check_image(name: str) -> dict:
    image = IMAGES[name]
    if name == "gateway":
        return check_gateway(image)
    if name == "triton-cpu":
        return {**check_uid(image), **check_python_env(image, "/opt/imgsel/venv/bin/python")}
    return check_postgresql(image)


def build(names: list[str], no_cache: bool = False) -> list[dict]:
    results = []
    for name in names:
        result = build_image(IMAGES[name], no_cache)
        result["checks"] = check_image(name)
        print(json.dumps(result), flush=True)
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", nargs="?", default="all", choices=["all", "install", "base", "wheelhouse", "build"])
    parser.add_argument("images", nargs="*", help=f"for build: some of {', '.join(IMAGES)} (default: all)")
    parser.add_argument("--no-cache", action="store_true", help="build every layer again (a cold build)")
    parser.add_argument("--force-base", action="store_true", help="make the base image again with mmdebstrap")
    parser.add_argument("--json", type=Path, help="write the timings and sizes here")
    args = parser.parse_args(argv)
    unknown = [name for name in args.images if name not in IMAGES]
    if unknown:
        parser.error(f"unknown image(s) {', '.join(unknown)}; choose from {', '.join(IMAGES)}")
    summary: dict = {}
    try:
        if args.step in ("all", "install"):
            install_tools()
        if args.step in ("all", "base"):
            summary["base_s"] = build_base(args.force_base)
            summary["base_size_bytes"] = image_size(BASE_IMAGE)
        if args.step in ("all", "wheelhouse"):
            summary["wheelhouse_s"] = build_wheelhouse()
        if args.step in ("all", "build"):
            if not image_exists(BASE_IMAGE):
                raise ImageError(f"no {BASE_IMAGE}: run `python -m tools.images base` first")
            if missing_wheels():
                raise ImageError("the wheelhouse is incomplete: run `python -m tools.images wheelhouse` first")
            summary["images"] = build(args.images or list(IMAGES), args.no_cache)
    except (ImageError, subprocess.CalledProcessError) as error:
        print(f"images: {error}", file=sys.stderr)
        return 2
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "images"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
