"""Build TensorRT plans for Triton on the node's GPU, cached on the model-repository volume (the chart's init step).

A plan is only valid for the GPU model and TensorRT version it was built with, so plans are built where they run and
cached under <cache>/<gpu>/trt-<version>/<model>/<version>/<hash>/model.plan, where <hash> covers the ONNX file and
every trtexec argument (optimisation profile from the model's config.pbtxt, FP16, extra arguments). A pod whose plans
are cached starts without building; a new GPU model, TensorRT version, ONNX file or config builds anew.

The source repository is the gpu profile as generated (`make repo PROFILE=gpu`): every model whose config.pbtxt says
`platform: "tensorrt_plan"` has `<version>/model.onnx` (or an already built `<version>/model.plan`, used as is).
The repository Triton serves is assembled in --serving from symbolic links: other models link their whole folder,
TensorRT models link config.pbtxt and the cached plan. Runs with the image's python3 and the standard library only.

    engine_build.py --source /models --cache /models/.engine-cache --serving /serving \
        --trtexec /usr/src/tensorrt/bin/trtexec --fp16 [--trtexec-arg=--memPoolSize=workspace:4096M ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TENSORRT_PLATFORM = "tensorrt_plan"
TOKEN = re.compile(r'\s*(?:(#[^\n]*)|("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')|([{}\[\]<>:,;])|([^\s{}\[\]<>:,;"\']+))')


class BuildError(RuntimeError):
    pass


def tokens(text: str) -> list[str]:
    found, position = [], 0
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None or match.end() == position:
            if text[position:].strip():
                raise BuildError(f"cannot read config.pbtxt near {text[position : position + 40]!r}")
            break
        position = match.end()
        if match.group(1) is None and match.group(0).strip():
            found.append(match.group(0).strip())
    return found


def parse_pbtxt(text: str) -> dict:
    """Protocol-buffer text format as nested dicts; every field maps to the list of its values (fields repeat)."""
    stream = tokens(text)
    position = 0

    def value():
        nonlocal position
        token = stream[position]
        position += 1
        if token in ("{", "<"):
            return message("}" if token == "{" else ">")
        if token == "[":
            items = []
            while stream[position] != "]":
                items.append(value())
                if stream[position] == ",":
                    position += 1
            position += 1
            return items
        if token[0] in "\"'":
            return token[1:-1]
        return token

    def message(end: str | None) -> dict:
        nonlocal position
        fields: dict[str, list] = {}
        while position < len(stream) and stream[position] != end:
            name = stream[position]
            position += 1
            if stream[position] == ":":
                position += 1
            parsed = value()
            fields.setdefault(name, []).extend(parsed if isinstance(parsed, list) else [parsed])
            if position < len(stream) and stream[position] in (",", ";"):
                position += 1
        position += 1
        return fields

    return message(None)


def first(fields: dict, name: str, default=None):
    values = fields.get(name) or [default]
    return values[0]


def shape_arguments(config: dict, model: str) -> list[str]:
    """trtexec --minShapes/--optShapes/--maxShapes over the batch range 1..max_batch_size (optimum at a quarter of
    it, as build_engines.tensorrt_build does), from the inputs declared in config.pbtxt."""
    max_batch = int(first(config, "max_batch_size", 0))
    inputs = config.get("input", [])
    if not inputs:
        raise BuildError(f"{model}: config.pbtxt declares no input")
    shapes = {"min": [], "opt": [], "max": []}
    for tensor in inputs:
        name = first(tensor, "name")
        dims = [int(d) for d in tensor.get("dims", [])]
        if any(d < 0 for d in dims):
            raise BuildError(f"{model}: input {name} has a variable dimension {dims}; a plan needs fixed dims")
        batches = {"min": 1, "opt": max(1, max_batch // 4), "max": max_batch} if max_batch > 0 else None
        for kind in shapes:
            full = ([batches[kind]] if batches else []) + dims
            shapes[kind].append(f"{name}:{'x'.join(str(d) for d in full)}")
    return [f"--{kind}Shapes={','.join(values)}" for kind, values in shapes.items()]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-") or "unknown"


def gpu_name() -> str:
    """The first visible GPU's product name (the pod sees only its allocated GPUs)."""
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=60
        )
    except OSError as error:
        raise BuildError(f"nvidia-smi not runnable ({error}): no GPU in this pod?") from None
    names = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0 or not names:
        raise BuildError(f"nvidia-smi found no GPU: {result.stderr.strip() or result.stdout.strip()}")
    return names[0]


def tensorrt_version(trtexec: str) -> str:
    """TRT_VERSION of NGC images, else the version trtexec prints in its banner ([TensorRT v100500] -> 10.5.0)."""
    if os.environ.get("TRT_VERSION"):
        return os.environ["TRT_VERSION"]
    try:
        result = subprocess.run([trtexec, "--help"], capture_output=True, text=True, timeout=60)
    except OSError as error:
        raise BuildError(f"trtexec not runnable at {trtexec}: {error}") from None
    match = re.search(r"TensorRT v(\d+)", result.stdout + result.stderr)
    if match is None:
        raise BuildError(f"no TensorRT version in the output of {trtexec} --help")
    number = int(match.group(1))  # e.g. 100500 = 10.5.0, 8601 = 8.6.1
    major, rest = (number // 10000, number % 10000) if number >= 10000 else (number // 1000, number % 1000)
    return f"{major}.{rest // 100}.{rest % 100}"


def build_plan(trtexec: str, onnx: Path, plan: Path, arguments: list[str]) -> float:
    """trtexec into a temporary file beside the cache entry, renamed into place when complete (pods building the
    same key at once each finish with a whole file)."""
    plan.parent.mkdir(parents=True, exist_ok=True)
    descriptor, partial = tempfile.mkstemp(prefix=".building-", suffix=".plan", dir=plan.parent)
    os.close(descriptor)
    started = time.monotonic()
    command = [trtexec, f"--onnx={onnx}", f"--saveEngine={partial}", *arguments]
    try:
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0 or os.path.getsize(partial) == 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
            raise BuildError(f"trtexec failed for {onnx} (exit {result.returncode}):\n{tail}")
        os.replace(partial, plan)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return time.monotonic() - started


def link(target: Path, name: Path) -> None:
    name.parent.mkdir(parents=True, exist_ok=True)
    name.symlink_to(target)


def clear(serving: Path) -> None:
    """Empty the serving folder (an init container restarted in the same pod finds the previous attempt)."""
    serving.mkdir(parents=True, exist_ok=True)
    for entry in serving.iterdir():
        if entry.is_symlink() or entry.is_file():
            entry.unlink()
        else:
            shutil.rmtree(entry)


def assemble(args: argparse.Namespace, gpu: str, trt_version: str) -> list[dict]:
    source, cache, serving = Path(args.source), Path(args.cache), Path(args.serving)
    clear(serving)
    key_root = cache / slug(gpu) / f"trt-{slug(trt_version)}"
    flags = (["--fp16"] if args.fp16 else []) + list(args.trtexec_arg)
    report = []
    models = sorted(p for p in source.iterdir() if p.is_dir() and (p / "config.pbtxt").is_file())
    if not models:
        raise BuildError(f"no model (a folder with config.pbtxt) in {source}")
    for model_dir in models:
        model = model_dir.name
        config = parse_pbtxt((model_dir / "config.pbtxt").read_text())
        if first(config, "platform") != TENSORRT_PLATFORM:
            link(model_dir, serving / model)
            report.append({"model": model, "plan": "not a TensorRT model: linked as is"})
            continue
        arguments = shape_arguments(config, model) + flags
        link(model_dir / "config.pbtxt", serving / model / "config.pbtxt")
        versions = sorted(p for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())
        if not versions:
            raise BuildError(f"{model}: no version folder (1/ with model.onnx)")
        for version_dir in versions:
            onnx = version_dir / "model.onnx"
            if not onnx.is_file():
                if not (version_dir / "model.plan").is_file():
                    raise BuildError(f"{model}/{version_dir.name}: neither model.onnx nor model.plan")
                link(version_dir, serving / model / version_dir.name)
                report.append({"model": model, "version": version_dir.name, "plan": "prebuilt in the repository"})
                continue
            digest = hashlib.sha256(sha256_of(onnx).encode())
            digest.update("\0".join(arguments).encode())
            plan = key_root / model / version_dir.name / digest.hexdigest()[:20] / "model.plan"
            entry = {"model": model, "version": version_dir.name, "plan": str(plan)}
            if plan.is_file() and plan.stat().st_size > 0:
                entry["built"] = False
            else:
                entry["built"], entry["seconds"] = True, round(build_plan(args.trtexec, onnx, plan, arguments), 1)
            link(plan, serving / model / version_dir.name / "model.plan")
            report.append(entry)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True, help="the model repository (gpu profile, with ONNX files)")
    parser.add_argument("--cache", required=True, help="where plans are kept across pods (on the repository volume)")
    parser.add_argument("--serving", required=True, help="the repository Triton serves, assembled here")
    parser.add_argument("--trtexec", default="trtexec")
    parser.add_argument("--fp16", action="store_true")
    parser.add_argument("--trtexec-arg", action="append", default=[], help="one more trtexec argument (repeatable)")
    args = parser.parse_args(argv)
    try:
        gpu, trt_version = gpu_name(), tensorrt_version(args.trtexec)
        print(json.dumps({"gpu": gpu, "tensorrt": trt_version, "cache": args.cache}), flush=True)
        for entry in assemble(args, gpu, trt_version):
            print(json.dumps(entry), flush=True)
    except BuildError as error:
        print(f"engine build: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
