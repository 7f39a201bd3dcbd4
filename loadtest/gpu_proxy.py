"""The gpu profile's path from JPEG bytes to everything a verdict needs, as far as it runs where neither Triton, nor
TensorRT, nor DALI is installed: issue #13's GPU target (>= 5,000 images/s on one H100, p99 <= 50 ms per 8-image
product) measured by proxy on a lent GPU machine, in one prepared call.

What runs, per image (the gpu profile's steps, build_engines/repository.py):
- on the GPU: nvJPEG decoding (torchvision, a batch at a time); the preprocessing's copies with PyTorch operators in
  place of DALI's: the 224 px copy (longer side, antialiased), PIXELS (padded with white, ImageNet-normalised), the
  128 px THUMB from it, the grey copy at <= 512 px (nearest) and its 3x3 Laplacian (int16, as the DALI-backend model
  hands it over); the backbone (PyTorch fp16, channels-last: the float32 weights TensorRT builds its FP16 engine from).
- on the host, in a process pool (as the gpu profile's python step and the gateway do there): the measures
  (preprocessing.runner.quality_features), the hashes (preprocessing.perceptual.hash_features, which the gateway
  makes from THUMB on that profile); and every served head on the embedding (onnxruntime on the CPU: the gpu profile
  runs them inside the TensorRT engine, so their host time is reported apart and left out of the cores needed).
A dynamic batcher (`instances` threads, each taking whatever products are queued, up to `max_batch` images) stands in
for Triton's; closed-loop clients send 8-image products.

    python -m loadtest.gpu_proxy prepare [--out .cache/gpu_proxy]     # here: weights, heads, model code, JPEGs
    python -m loadtest.gpu_proxy run [--dir .cache/gpu_proxy] [--seconds 20] [--clients 32] [--json F]  # there

`run` reports (1) the GPU steps alone at a few batch sizes, (2) products through the batcher and the pool: images/s,
p50 / p99 per product, the batches formed, (3) the host work per image (in a pool worker: idle, and under load) and
the cores 5,000 images/s need of it.
On a machine without CUDA it runs the same code on the CPU (PIL decoding): what the tests check, no speed figure.
Not covered: Triton's own overhead, TensorRT's kernels against PyTorch's, and DALI's GPU operators against these.
One module of ~440 lines on purpose: its parts (prepare, the GPU steps, the host step, the batcher, the measuring) are
used only together, by one command; the closed loop it shares with `make bench` is loadtest.closed_loop.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import queue
import shutil
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from loadtest.closed_loop import closed_loop
from loadtest.products import IMAGES_PER_PRODUCT, PROJECT_ROOT

PREPARED = PROJECT_ROOT / ".cache" / "gpu_proxy"
TRUNK_WEIGHTS = "trunk.pt"  # the backbone trunk's state_dict (ImageNet weights + the committed fine-tune)
HEADS_MODEL = "heads.onnx"  # every served head, on an EMBEDDING input
HEADS_INPUT = "BACKBONE_EMBEDDING"
VENDOR = "vendor"  # the trunk's model code (efficientnet_lite_pytorch: pure Python), absent on the GPU machine
IMAGES = "images"
TARGET_IMAGES_PER_S = 5000
GPU_ONLY_BATCHES = (64, 256)


# ---------------------------------------------------------------------------------------------- prepare (here)


def prepare(out: Path, images: int) -> dict:
    """Write what `run` needs into `out`: the benchmark's JPEGs, the backbone's weights and model code, the heads."""
    import torch

    from build_engines.backbone import backbone_fingerprint, load_backbone
    from loadtest.products import benchmark_images

    files, note = benchmark_images(images)
    (out / IMAGES).mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(files):
        (out / IMAGES / f"{i:04d}.jpg").write_bytes(data)
    torch.save(load_backbone().trunk.state_dict(), out / TRUNK_WEIGHTS)
    import efficientnet_lite_pytorch

    vendored = out / VENDOR / "efficientnet_lite_pytorch"
    shutil.rmtree(vendored, ignore_errors=True)
    shutil.copytree(Path(efficientnet_lite_pytorch.__file__).parent, vendored, ignore=shutil.ignore_patterns("*.pyc"))
    write_heads_model(out / HEADS_MODEL, out / "scratch")
    manifest = {"images": note, "count": len(files), "backbone_fingerprint": backbone_fingerprint()}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def write_heads_model(path: Path, scratch: Path) -> Path:
    """The served heads (build_engines.vision.vision_heads) spliced onto an identity graph from HEADS_INPUT to
    EMBEDDING: the vision model less its backbone, for onnxruntime on the host."""
    import onnx
    from onnx import TensorProto, helper

    from build_engines.vision import splice_heads, vision_heads
    from contract.tensors import EMBEDDING

    scratch.mkdir(parents=True, exist_ok=True)
    heads = vision_heads(scratch)
    first = onnx.load(str(heads[0].path))
    width = EMBEDDING.dims[0]
    graph = helper.make_graph(
        [helper.make_node("Identity", [HEADS_INPUT], [EMBEDDING.name])],
        "heads",
        [helper.make_tensor_value_info(HEADS_INPUT, TensorProto.FLOAT, ["N", width])],
        [helper.make_tensor_value_info(EMBEDDING.name, TensorProto.FLOAT, ["N", width])],
    )
    identity = helper.make_model(graph, opset_imports=first.opset_import, ir_version=first.ir_version)
    onnx.save(splice_heads(identity, heads), str(path))
    shutil.rmtree(scratch, ignore_errors=True)
    return path


# ---------------------------------------------------------------------------------------------- the GPU steps


class GpuPath:
    """Decoding, the preprocessing's copies and the backbone on one device ("cuda" or "cpu")."""

    def __init__(self, prepared: Path, device: str, half: bool | None = None):
        import torch

        sys.path.insert(0, str(prepared / VENDOR))
        from efficientnet_lite_pytorch import EfficientNet

        from build_engines.backbone import EmbeddingBackbone
        from preprocessing.pipeline import LAPLACIAN_KERNEL, MEAN, STD

        self.torch = torch
        self.device = torch.device(device)
        self.half = self.device.type == "cuda" if half is None else half
        trunk = EfficientNet.from_name("efficientnet-lite0")
        state = torch.load(prepared / TRUNK_WEIGHTS, map_location="cpu", weights_only=True)
        trunk.load_state_dict(state, strict=False)  # the classifier (_fc) is not part of the embedding
        model = EmbeddingBackbone(trunk).eval().to(self.device)
        if self.half:
            model = model.half()
        self.model = model.to(memory_format=torch.channels_last)
        self.mean = torch.tensor(MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(STD, device=self.device).view(1, 3, 1, 1)
        self.kernel = torch.tensor(LAPLACIAN_KERNEL, device=self.device).view(1, 1, 3, 3)
        self.grey_weights = torch.tensor((0.299, 0.587, 0.114), device=self.device).view(1, 3, 1, 1)
        try:
            from torchvision.io import ImageReadMode, decode_jpeg

            self._decode_jpeg = lambda data: decode_jpeg(data, device=self.device, mode=ImageReadMode.RGB)
        except ImportError:  # no torchvision (the project's own venv): Pillow, on the CPU
            self._decode_jpeg = None

    def decode(self, files: list[bytes]):
        """(3, h, w) uint8 tensors on the device, one a file."""
        torch = self.torch
        if self._decode_jpeg is not None:
            return self._decode_jpeg([torch.frombuffer(bytearray(f), dtype=torch.uint8) for f in files])
        import io

        from PIL import Image

        decoded = [np.asarray(Image.open(io.BytesIO(f)).convert("RGB")) for f in files]
        return [torch.from_numpy(a.copy()).permute(2, 0, 1).to(self.device) for a in decoded]

    def preprocess(self, images) -> dict:
        """PIXELS (n, 3, 224, 224) float on the device; THUMB (n, 128, 128, 3) uint8, LAPLACIAN (n, 512, 512) int16
        zero-padded and LAPLACIAN_SIZE (n, 2), all three on the host (what the gpu profile's numpy step reads).
        Images of one size are resampled together."""
        from contract.tensors import BACKBONE_SIDE, THUMB_SIDE
        from preprocessing.pipeline import BLUR_SIDE, PAD_WHITE
        from preprocessing.resampling import centring_offset, longer_side_size

        torch, f = self.torch, self.torch.nn.functional
        n = len(images)
        pixels = torch.full((n, 3, BACKBONE_SIDE, BACKBONE_SIDE), PAD_WHITE, device=self.device)
        thumbs = torch.empty((n, 3, THUMB_SIDE, THUMB_SIDE), dtype=torch.uint8, device=self.device)
        laplacians = torch.zeros((n, BLUR_SIDE, BLUR_SIDE), dtype=torch.int16, device=self.device)
        sizes = np.zeros((n, 2), np.int32)
        by_size: dict[tuple[int, int], list[int]] = {}
        for i, image in enumerate(images):
            by_size.setdefault(tuple(image.shape[1:]), []).append(i)
        for (height, width), members in by_size.items():
            batch = torch.stack([images[i] for i in members]).float()
            small_size = longer_side_size(height, width, BACKBONE_SIDE)
            small = f.interpolate(batch, size=small_size, mode="bilinear", antialias=True, align_corners=False)
            small = small.round_().clamp_(0, 255)  # DALI resizes uint8 to uint8
            top, left = centring_offset(small_size[0]), centring_offset(small_size[1])
            pixels[members, :, top : top + small_size[0], left : left + small_size[1]] = small
            thumb = f.interpolate(small, size=(THUMB_SIDE, THUMB_SIDE), mode="bilinear", antialias=True)
            thumbs[members] = thumb.round_().clamp_(0, 255).to(torch.uint8)
            grey = (batch * self.grey_weights).sum(dim=1, keepdim=True).round_().clamp_(0, 255)
            grey_size = longer_side_size(height, width, min(BLUR_SIDE, max(height, width)))
            grey = f.interpolate(grey, size=grey_size, mode="nearest-exact")
            laplacian = f.conv2d(f.pad(grey, (1, 1, 1, 1), mode="reflect"), self.kernel)
            laplacians[members, : grey_size[0], : grey_size[1]] = laplacian[:, 0].to(torch.int16)
            sizes[members] = grey_size
        pixels = ((pixels - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        return {
            "PIXELS": pixels,
            "THUMB": thumbs.permute(0, 2, 3, 1).cpu().numpy(),
            "LAPLACIAN": laplacians.cpu().numpy(),
            "LAPLACIAN_SIZE": sizes,
        }

    def embed(self, pixels) -> np.ndarray:
        with self.torch.inference_mode():
            return self.model(pixels.half() if self.half else pixels).float().cpu().numpy()

    def __call__(self, files: list[bytes]) -> dict:
        """Everything the host step reads of these files, as host arrays (EMBEDDING added to preprocess's)."""
        out = self.preprocess(self.decode(files))
        out["EMBEDDING"] = self.embed(out.pop("PIXELS"))
        return out

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()


# ---------------------------------------------------------------------------------------------- the host step


_HEADS = None


def _load_heads(path: str) -> None:
    """Pool initializer: the heads' onnxruntime session, one thread (the pool's processes are the parallelism)."""
    global _HEADS
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    _HEADS = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def host_work(product: dict) -> dict:
    """The host's share for one product: the measures, the hashes and the heads' outputs; with the CPU ms it took
    (measured in the worker: the main process's torch threads would count in a process-wide clock there)."""
    from contract.tensors import QUALITY_FEATURES
    from preprocessing.perceptual import hash_features
    from preprocessing.runner import quality_features

    started = time.process_time()
    features, hashes = [], []
    for thumb, laplacian, (height, width) in zip(product["THUMB"], product["LAPLACIAN"], product["LAPLACIAN_SIZE"]):
        features.append(quality_features(thumb, laplacian[:height, :width].astype(np.float32)))
        hashes.append(hash_features(thumb))
    measured = time.process_time()
    feeds = {HEADS_INPUT: product["EMBEDDING"], QUALITY_FEATURES.name: np.stack(features)}
    outputs = _HEADS.run(None, {i.name: feeds[i.name] for i in _HEADS.get_inputs()})
    return {
        "hashes": hashes,
        "heads": [o.shape for o in outputs],
        "cpu_ms": 1000 * (measured - started),  # measures and hashes: the gpu profile's host work
        "heads_cpu_ms": 1000 * (time.process_time() - measured),  # there, inside the TensorRT engine instead
    }


# ---------------------------------------------------------------------------------------------- the batcher


class Batcher:
    """Triton's dynamic batcher in miniature: `instances` threads, each taking every queued product (up to
    `max_batch` images) through the GPU steps, then handing each product's host work to the pool."""

    def __init__(self, path: GpuPath, pool, instances: int, max_batch: int):
        self.path, self.pool, self.max_batch = path, pool, max_batch
        self.queue: queue.Queue = queue.Queue()
        self.batches: list[int] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._serve, daemon=True) for _ in range(instances)]
        for thread in self._threads:
            thread.start()

    def submit(self, files: list[bytes]) -> Future:
        done: Future = Future()
        self.queue.put((files, done))
        return done

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                taken = [self.queue.get(timeout=0.1)]
            except queue.Empty:
                continue
            images = len(taken[0][0])
            while images < self.max_batch:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                taken.append(item)
                images += len(item[0])
            try:
                out = self.path([data for files, _ in taken for data in files])
            except Exception as error:  # every product of the batch fails, the batcher goes on
                for _, done in taken:
                    done.set_exception(error)
                continue
            self.batches.append(images)
            start = 0
            for files, done in taken:
                product = {name: value[start : start + len(files)] for name, value in out.items()}
                start += len(files)
                self.pool.apply_async(
                    host_work, (product,), callback=done.set_result, error_callback=done.set_exception
                )

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


# ---------------------------------------------------------------------------------------------- measuring


def gpu_only(path: GpuPath, files: list[bytes], batch: int, seconds: float) -> float:
    """Images/s of the GPU steps alone (decode, copies, backbone, results to the host), one batch after another."""
    chosen = [files[i % len(files)] for i in range(batch)]
    path(chosen)
    path.synchronize()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        path(chosen)
        done += batch
    path.synchronize()
    return done / (time.perf_counter() - start)


def host_ms_per_image(path: GpuPath, files: list[bytes], pool, repeats: int = 5) -> dict[str, float]:
    """CPU ms an image of host_work's two parts in a pool worker with nothing else running, best of `repeats`."""
    product = path(files[:IMAGES_PER_PRODUCT])
    results = [pool.apply(host_work, (product,)) for _ in range(repeats)]
    return {part: min(r[part] for r in results) / IMAGES_PER_PRODUCT for part in ("cpu_ms", "heads_cpu_ms")}


def serve(batcher: Batcher, files: list[bytes], clients: int, seconds: float) -> dict:
    """Closed loop: `clients` threads each send one 8-image product at a time for `seconds`."""

    def send(k: int) -> dict:
        product = [files[(k * IMAGES_PER_PRODUCT + i) % len(files)] for i in range(IMAGES_PER_PRODUCT)]
        return batcher.submit(product).result(timeout=60)

    loop = closed_loop(clients, seconds, lambda worker: contextlib.nullcontext(send))
    host_ms = [answer["cpu_ms"] / IMAGES_PER_PRODUCT for answer in loop.answers]
    return {
        "clients": clients,
        **loop.summary(IMAGES_PER_PRODUCT),
        "host_cpu_ms_per_image": round(float(np.mean(host_ms)), 3) if host_ms else None,
    }


def run(
    prepared: Path,
    seconds: float,
    clients: list[int],
    instances: int,
    max_batch: int,
    workers: int,
    gpu_only_batches: tuple[int, ...] = GPU_ONLY_BATCHES,
) -> dict:
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        torch.set_num_threads(1)  # the host's cores are the pool's; idle OpenMP threads would spin on them
    files = [p.read_bytes() for p in sorted((prepared / IMAGES).glob("*.jpg"))]
    if not files:
        raise SystemExit(f"no JPEGs under {prepared / IMAGES}: run `python -m loadtest.gpu_proxy prepare` first")
    path = GpuPath(prepared, device)
    report: dict = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu (no CUDA: not a speed figure)",
        "torch": torch.__version__,
        "decoder": "nvJPEG (torchvision)" if path._decode_jpeg is not None else "Pillow",
        "backbone": "fp16" if path.half else "fp32",
        "host_cpus": os.cpu_count(),
        "manifest": json.loads((prepared / "manifest.json").read_text()),
    }
    report["gpu_only_images_per_s"] = {
        batch: round(gpu_only(path, files, batch, seconds / 4), 1) for batch in gpu_only_batches
    }
    heads = prepared / HEADS_MODEL
    context = multiprocessing.get_context("spawn")  # no CUDA state in the workers
    with context.Pool(workers, initializer=_load_heads, initargs=(str(heads),)) as pool:
        idle = host_ms_per_image(path, files, pool)
        report["host_cpu_ms_per_image"] = round(idle["cpu_ms"], 3)
        report["heads_cpu_ms_per_image_on_host"] = round(idle["heads_cpu_ms"], 3)
        report["host_cores_at_target"] = round(TARGET_IMAGES_PER_S * report["host_cpu_ms_per_image"] / 1000, 1)
        report["served"] = []
        for level in clients:
            batcher = Batcher(path, pool, instances, max_batch)
            result = serve(batcher, files, level, seconds)
            batcher.stop()
            result["mean_batch_images"] = round(float(np.mean(batcher.batches)), 1) if batcher.batches else 0.0
            report["served"].append(result)
    report["settings"] = {"seconds": seconds, "instances": instances, "max_batch": max_batch, "workers": workers}
    return report


def markdown(report: dict) -> str:
    lines = [
        f"{report['device']}, torch {report['torch']}, {report['decoder']}, backbone {report['backbone']}, "
        f"{report['host_cpus']} host CPUs; {report['manifest']['images']}",
        "",
        "| GPU steps alone, batch | images/s |",
        "| ---: | ---: |",
        *(f"| {batch} | {rate} |" for batch, rate in report["gpu_only_images_per_s"].items()),
        "",
        f"Host work (measures and hashes): {report['host_cpu_ms_per_image']} CPU ms an image; "
        f"{TARGET_IMAGES_PER_S} images/s need {report['host_cores_at_target']} cores of it. The heads on the host: "
        f"{report['heads_cpu_ms_per_image_on_host']} ms more (the gpu profile runs them in the TensorRT engine).",
        "",
        "| clients | images/s | p50 ms | p99 ms | mean batch | host CPU ms an image | failures |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(
            f"| {r['clients']} | {r['images_per_s']} | {r['p50_ms']} | {r['p99_ms']} | {r['mean_batch_images']} "
            f"| {r['host_cpu_ms_per_image']} | {r['failures']} |"
            for r in report["served"]
        ),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="write the weights, heads, model code and JPEGs `run` reads")
    prep.add_argument("--out", type=Path, default=PREPARED)
    prep.add_argument("--images", type=int, default=64)
    go = sub.add_parser("run", help="measure (on the GPU machine)")
    go.add_argument("--dir", type=Path, default=PREPARED)
    go.add_argument("--seconds", type=float, default=20.0, help="per client level (the GPU-only rows take a quarter)")
    go.add_argument("--clients", type=int, nargs="+", default=[8, 32, 64])
    go.add_argument("--instances", type=int, default=2, help="batcher threads (Triton's instance_group count)")
    go.add_argument("--max-batch", type=int, default=256)
    go.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2), help="host pool processes")
    go.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.command == "prepare":
        print(json.dumps(prepare(args.out, args.images), indent=1))
        return 0
    report = run(args.dir, args.seconds, args.clients, args.instances, args.max_batch, args.workers)
    print(markdown(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
