"""Small synthetic product photos the tests make themselves (never ../shared/data)."""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def product_photo(side: int = 800, colour=(200, 40, 40), seed: int = 0, object_fraction: float = 0.7) -> Image.Image:
    """A textured 'product' (shirt-like silhouette with stripes and noise) centred on a white studio background."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (side, side), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    size = int(side * object_fraction)
    left, top = (side - size) // 2, (side - size) // 2
    body = [left + size * 0.2, top + size * 0.15, left + size * 0.8, top + size]
    draw.rectangle(body, fill=colour)
    draw.polygon(
        [(left, top + size * 0.35), (left + size * 0.2, top + size * 0.15), (left + size * 0.2, top + size * 0.5)],
        fill=colour,
    )
    draw.polygon(
        [
            (left + size, top + size * 0.35),
            (left + size * 0.8, top + size * 0.15),
            (left + size * 0.8, top + size * 0.5),
        ],
        fill=colour,
    )
    darker = tuple(max(0, c - 70) for c in colour)
    for k in range(int(seed % 3) + 3):
        y = top + size * (0.3 + 0.12 * k)
        draw.line([(body[0], y), (body[2], y)], fill=darker, width=max(2, side // 100))
    draw.ellipse([left + size * 0.42, top + size * 0.1, left + size * 0.58, top + size * 0.22], fill=(255, 255, 255))
    # A chest pocket on one side: a perfectly mirror-symmetric picture has near-zero odd DCT terms, so its pHash bits
    # there are noise (a known pHash limit, gateway/hashing.py); real products are rarely that symmetric.
    draw.rectangle([left + size * 0.28, top + size * 0.3, left + size * 0.42, top + size * 0.45], fill=darker)
    pixels = np.asarray(image).astype(np.int16)
    mask = (pixels != 255).any(axis=2, keepdims=True)
    noise = rng.normal(0, 12, pixels.shape).astype(np.int16)
    return Image.fromarray(np.clip(pixels + noise * mask, 0, 255).astype(np.uint8))


def squashed_thumbnail(img: Image.Image) -> np.ndarray:
    """(128, 128, 3) uint8: the picture squashed to a thumbnail, as THUMB is (bilinear here; DALI's is antialiased)."""
    return np.asarray(img.convert("RGB").resize((128, 128), Image.Resampling.BILINEAR))


def fabric_close_up(seed: int = 5, size: tuple[int, int] = (500, 600)) -> Image.Image:
    """A close-up of a garment filling the frame: a blue fabric with soft folds to every edge and a print of colour
    blobs in its middle. Its border is the fabric, so the content box is the print; on a white pad or canvas the whole
    garment becomes the content (the case the duplicate rule's framing rescue is for)."""
    width, height = size
    rng = np.random.default_rng(seed)
    folds = np.asarray(
        Image.fromarray(rng.integers(0, 40, (6, 5), dtype=np.uint8)).resize(size, Image.Resampling.BICUBIC), np.int16
    )
    fabric = np.clip(np.array([40, 90, 170], np.int16) + folds[..., None] - 20, 0, 255).astype(np.uint8)
    img = Image.fromarray(fabric)
    blobs = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    print_size = (round(0.8 * width), round(0.8 * height))
    img.paste(Image.fromarray(blobs).resize(print_size, Image.Resampling.BICUBIC), (width // 10, height // 10))
    return img


def encode(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        options.setdefault("quality", 90)
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def concept_photo(k: int, side: int, colours: list, render=None) -> bytes:
    """Encoded product photo number `k` (colour from `colours`, object fraction drawn from a generator seeded with
    `k`), with `render(image, rng)` (a training.concepts renderer) drawn on it from the same generator, or clean."""
    rng = np.random.default_rng(k)
    image = product_photo(side, colours[k % len(colours)], seed=k, object_fraction=rng.uniform(0.5, 0.8))
    return encode(render(image, rng) if render else image)


def blurred(image: Image.Image, radius_fraction: float = 0.008) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(radius_fraction * max(image.size)))


def corrupt_jpeg(data: bytes) -> bytes:
    """A JPEG cut off after its headers: the decoder fails on it."""
    return data[: len(data) // 8]


def rendered_placeholder(side: int = 600, text: str = "NO IMAGE", seed: int = 0) -> Image.Image:
    """A typical shop placeholder: grey panel, a camera-like glyph, a caption."""
    from PIL import ImageFont

    rng = np.random.default_rng(seed)
    grey = int(rng.integers(200, 235))
    image = Image.new("RGB", (side, side), (grey, grey, grey))
    draw = ImageDraw.Draw(image)
    ink = (grey - 90,) * 3
    body = [side * 0.3, side * 0.3, side * 0.7, side * 0.58]
    draw.rounded_rectangle(body, radius=side // 30, outline=ink, width=max(3, side // 60))
    draw.ellipse([side * 0.43, side * 0.36, side * 0.57, side * 0.52], outline=ink, width=max(3, side // 60))
    font = ImageFont.load_default(size=max(12, side // 12))
    width = draw.textlength(text, font=font)
    draw.text(((side - width) / 2, side * 0.66), text, fill=ink, font=font)
    return image


@contextlib.contextmanager
def private_stack_client(repository: Path, data_prefix: str):
    """A cpu stack of its own on free ports (tritonserver on `repository`, the gateway with a fresh data dir) and an
    HTTP client to its gateway: for tests whose models the session stack does not serve."""
    import httpx

    from build_engines.triton_server import DEFAULT_DEST
    from tools.launcher import running_stack, settings_on_free_ports

    settings = settings_on_free_ports(
        model_repository=str(repository), triton_home=str(DEFAULT_DEST), startup_timeout_s=240
    )
    with running_stack(settings, extra_env={"IMGSEL_DATA_DIR": tempfile.mkdtemp(prefix=data_prefix)}):
        with httpx.Client(base_url=f"http://{settings.host}:{settings.port}", timeout=120) as client:
            yield client


def select_verdicts(client, images: list[tuple[str, bytes]], category: str = "apparel") -> dict[str, dict]:
    """POST /v1/select with `images` ((id, encoded file)) as base64; the verdicts by image id (answer must be 200)."""
    import base64

    body = {
        "product_id": "p",
        "category": category,
        "images": [{"id": name, "data": base64.b64encode(data).decode()} for name, data in images],
    }
    response = client.post("/v1/select", json=body)
    assert response.status_code == 200, response.text
    return {image["id"]: image for image in response.json()["images"]}
