"""The labelled images the placeholder evaluations run on (../shared/data; nothing is downloaded):

  library          the real placeholders of placeholders/ (Solidus, OpenCart), as POST /v1/placeholders adds them
  known variants   seeded transforms of each (`variant`: border crop, resize, brightness/contrast, white padding,
                   JPEG/PNG) -> known-variant recall
  unseen           rendered placeholders (training.placeholder_synthesis text / glyph / grey-box generators) with
                   captions the learned head never saw (UNSEEN_PHRASES: other wordings and languages, or none)
                   -> unseen recall
  photos           real product photos: every catalog photo, every grocery iconic image, and grocery in-store phone
                   photos the quality head was not trained on -> false-positive rate

Each item has a split group: calibration and test halves never share a style, product or caption.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from training.datasets import DEFAULT_DATA, phone_photos, photo_sources
from training.image_codec import encode_image
from training.quality_samples import in_store_picks
from training.splits import role_of

DATA = DEFAULT_DATA
SPLIT_SALT = "imgsel-placeholder-vote:"
# Captions absent from training.placeholder_synthesis.PHRASES (the head's training captions).
UNSEEN_PHRASES = (
    "Image not found",
    "No image yet",
    "Product image pending",
    "Picture coming soon",
    "Photo unavailable",
    "No thumbnail",
    "Kein Bild vorhanden",
    "Bild folgt",
    "Imagen no disponible",
    "Sin imagen",
    "Image non disponible",
    "Photo à venir",
    "Immagine non disponibile",
    "Geen afbeelding",
    "Brak zdjęcia",
    "Ingen bild",
    "N/A",
    "TBA",
)
CATEGORIES = ("apparel", "gear", "grocery")


@dataclass
class Item:
    key: str
    kind: str  # library, known, unseen, photo
    group: str  # unit of the calibration/test split; a vote never uses exemplars of the query's own group
    category: str
    head_seen: bool = False  # the quality head was trained on this very image (photos only)
    data: np.ndarray | None = None
    path: str = ""


def split_of(item: Item) -> str:
    """calibration or test: by a salted hash of the group; known variants alternate by index."""
    if item.kind == "known":
        return "test" if item.group.endswith("1") else "calibration"
    digest = int(hashlib.sha256((SPLIT_SALT + item.group).encode()).hexdigest()[:8], 16)
    return "test" if digest / 0xFFFFFFFF < 0.5 else "calibration"


def load(item: Item) -> np.ndarray:
    return item.data if item.data is not None else np.fromfile(item.path, dtype=np.uint8)


# ---------------------------------------------------------------------------------------------- placeholders


def on_white(image: Image.Image) -> Image.Image:
    """Alpha-composited on white, as the preprocessing flattens a transparent upload (preprocessing.runner)."""
    rgba = image.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")


def cropped(image: Image.Image, fraction: float) -> Image.Image:
    """`fraction` of the width and height cut from each side."""
    w, h = image.size
    return image.crop((int(w * fraction), int(h * fraction), int(w * (1 - fraction)), int(h * (1 - fraction))))


def padded(image: Image.Image, fraction: float) -> Image.Image:
    """A white border `fraction` of the longer side wide (none below a pixel)."""
    pad = int(max(image.size) * fraction)
    if not pad:
        return image
    canvas = Image.new("RGB", (image.width + 2 * pad, image.height + 2 * pad), (255, 255, 255))
    canvas.paste(image, (pad, pad))
    return canvas


def variant(image: Image.Image, rng: np.random.Generator, tone: bool = True) -> np.ndarray:
    """A known placeholder as a shop might re-serve it: border crop 0-6 %, resize 0.4-1.0, brightness and contrast
    +-20 % (not with `tone` False: the same draws, unused, so every other step stays the same), white padding
    0-15 %, PNG (20 %) or JPEG q35-95."""
    image = cropped(on_white(image), rng.uniform(0, 0.06))
    scale = rng.uniform(0.4, 1.0)
    image = image.resize((max(16, int(image.width * scale)), max(16, int(image.height * scale))), Image.LANCZOS)
    brightness, contrast = rng.uniform(0.8, 1.2), rng.uniform(0.8, 1.2)
    if tone:
        image = ImageEnhance.Contrast(ImageEnhance.Brightness(image).enhance(brightness)).enhance(contrast)
    image = padded(image, rng.uniform(0, 0.15))
    return encode_image(image, "PNG") if rng.random() < 0.2 else encode_image(image, "JPEG", int(rng.integers(35, 96)))


def library_items(known: list[Path]) -> list[Item]:
    return [Item(f"library:{p.name}", "library", f"library:{p.name}", "", data=np.fromfile(p, np.uint8)) for p in known]


def known_variants(known: list[Path], per_placeholder: int, rng: np.random.Generator) -> list[Item]:
    """`per_placeholder` variants of each library placeholder, each with a random category (the vote's exemplars)."""
    items = []
    for p in known:
        for v in range(per_placeholder):
            category = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
            items.append(
                Item(f"known:{p.name}:{v}", "known", f"known:{v % 2}", category, data=variant(Image.open(p), rng))
            )
    return items


def encode(image: Image.Image, rng: np.random.Generator) -> np.ndarray:
    """PNG (40 %) or JPEG q70-95."""
    return encode_image(image, "PNG") if rng.random() < 0.4 else encode_image(image, "JPEG", int(rng.integers(70, 96)))


def unseen_placeholders(n: int, seed: int) -> list[Item]:
    from training import placeholder_synthesis as ps
    from training.quality_data import rng_for

    fonts = ps.font_paths()
    items = []
    for i in range(n):
        rng = rng_for("unseen-placeholder", seed, i)
        kind = ("text", "text", "glyph", "glyph", "box")[i % 5]
        phrase = UNSEEN_PHRASES[int(rng.integers(len(UNSEEN_PHRASES)))]
        if kind != "text" and rng.random() < 0.4:
            phrase = None
        font = fonts[int(rng.integers(len(fonts)))] if fonts else None
        if kind == "text":
            image = ps.text_placeholder(rng, phrase, font)
        elif kind == "glyph":
            image = ps.glyph_placeholder(rng, phrase, font)
        else:
            image = ps.grey_box(rng, phrase, font)
        group = f"phrase:{phrase}" if phrase else f"{kind}:{i}"
        category = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
        items.append(Item(f"unseen:{kind}:{i}", "unseen", group, category, data=encode(image, rng)))
    return items


# ---------------------------------------------------------------------------------------------- photos


def head_training_photos() -> set[str]:
    """Catalog and iconic files the quality head trained on (its train-role sources)."""
    return {str(source.path) for source in photo_sources(DATA) if role_of(source.group) == "train"}


def photos(in_store: int) -> list[Item]:
    """Every catalog photo and grocery iconic image (marked when the head trained on it), then `in_store` phone
    photos per grocery product that the head did not train on."""
    seen = head_training_photos()
    items = [
        Item(f"photo:{s.path.name}", "photo", s.group, s.category, str(s.path) in seen, path=str(s.path))
        for s in photo_sources(DATA)
    ]
    for product, paths in sorted(phone_photos(DATA).items()):
        picks = {str(p) for p in in_store_picks(paths)}
        unused = [p for p in sorted(paths) if str(p) not in picks]
        for p in unused[:: max(1, len(unused) // in_store)][:in_store]:
            items.append(Item(f"photo:{p.relative_to(DATA)}", "photo", f"grocery:{product}", "grocery", path=str(p)))
    return items


def assemble(known: list[Path], variants: int, unseen: int, in_store: int, seed: int) -> list[Item]:
    """library, known variants, unseen placeholders, photos: in this order (the seeded draws depend on it)."""
    rng = np.random.default_rng(seed)
    return [
        *library_items(known),
        *known_variants(known, variants, rng),
        *unseen_placeholders(unseen, seed),
        *photos(in_store),
    ]
