"""The quality heads' samples: which synthetic images exist (`build_specs`: one `Spec` per sample, with its kind,
source, split group and role) and how each is rendered into an encoded file with its labels (`render`).

Kinds: degradations of real product photos (catalog studio photos, grocery iconic images), untransformed in-store
phone photos, and placeholders (rendered captions, glyphs, grey boxes, variants of the real ones). Every sample's
pixels depend only on its spec and SEED (training.quality_data.rng_for), so a spec list renders the same files on
every run and machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from training import hard_negatives as hn
from training import placeholder_synthesis as ps
from training import quality_data as qd
from training.datasets import phone_photos, photo_sources, shop_photos, shop_placeholders
from training.image_codec import encode_image
from training.splits import role_of

SEED = 0
HELD_OUT_PLACEHOLDER_FAMILY = "solidus"  # real placeholders never trained on; measured as unseen
N_TEXT, N_GLYPH, N_BOX = 320, 160, 80  # rendered placeholders
REAL_PLACEHOLDER_VARIANTS = 20
SHOP_PLACEHOLDER_VARIANTS = 10  # per real placeholder of products/placeholders
N_CARD, N_POSTER = 120, 120  # rendered hard negatives
HARD_NEGATIVE_STRIDE = 3  # every third photo source gives a thin view, the next a drawing, the next a faded copy
DEGRADED_PER_KIND = {"ph_text": 120, "ph_glyph": 80, "ph_box": 40, "ph_real": 60, "ph_shop": 60}
PHONE_PHOTOS_PER_PRODUCT = 4  # training in-store photos per grocery product (held-out products: all of them)
MILD_BLUR_MIN_SIDE = 1000  # mild blur is made from full-resolution photos at least this large
SCENE_BACKGROUND_SHARE = 0.6  # scene kinds on an in-store photo (the rest on a procedural background)

PHOTO_KINDS = (
    "original",  # the untransformed file
    "crop",  # crop-and-resize, sharp
    "soft",  # crop-and-resize + Gaussian sigma 0.15-0.4 px at working resolution: acceptable
    "blur",  # crop-and-resize + Gaussian sigma 1-6 px at working resolution
    "mild_blur",  # full resolution (>= 1000 px photos), Gaussian sigma 0.2-0.5 % of the longer side
    "motion",  # crop-and-resize + straight motion blur, standard deviation 1-5 px at working resolution
    "sweep",  # crop-and-resize + Gaussian sigma 0.1-4 px (log-uniform), labelled by the rule
    "small_white",  # object box shrunk to 1-7.5 % of a white canvas
    "large_white",  # object box at 13-50 % of a white canvas
    "small_scene",  # object cut out and pasted at 1-7.5 % of a scene (in-store photo or procedural)
    "large_scene",  # same at 13-60 %
    "flat",  # crop-and-resize turned into a flat-colour illustration: a product, not a placeholder
    "in_store",  # an untransformed in-store phone photo (grocery): not small, not a placeholder; blur unlabelled
)
# Negatives for the placeholder head only (their blur / small_object labels stay unknown): other shops' untransformed
# product photos and renders of what the head mistook for placeholders there (training.hard_negatives).
HARD_NEGATIVE_KINDS = ("shop", "thin", "drawing", "blank", "card", "poster")
# ph_shop: variants of products/placeholders; ph_degraded: any placeholder shrunk, padded, softened, re-encoded.
PLACEHOLDER_KINDS = ("ph_text", "ph_glyph", "ph_box", "ph_real", "ph_shop", "ph_degraded")
# Photo kinds on a plain studio background (where the classical measures are meant to work) and on scenes.
STUDIO_KINDS = (
    "original",
    "crop",
    "soft",
    "blur",
    "mild_blur",
    "motion",
    "sweep",
    "small_white",
    "large_white",
    "flat",
)
SCENE_KINDS = ("small_scene", "large_scene", "in_store")
BLURRED_CROP_KINDS = ("crop", "soft", "blur", "motion", "sweep")
ROLES = ("train", "calibration", "test")


@dataclass(frozen=True)
class Spec:
    key: str  # unique; also seeds the sample's generator
    kind: str
    source: str  # image file ("" for rendered placeholders)
    group: str  # unit of the split
    role: str  # train, calibration, test (test: every reported number)
    background: str = ""  # scene kinds: an in-store photo, or "" for a procedural background


# ---------------------------------------------------------------------------------------------- sample list


def in_store_picks(paths: list[Path]) -> list[Path]:
    """The in-store photos of one product that the training half uses (evenly spaced in file order)."""
    ordered = sorted(paths)
    return ordered[:: max(1, len(paths) // PHONE_PHOTOS_PER_PRODUCT)][:PHONE_PHOTOS_PER_PRODUCT]


def build_specs(data: Path) -> list[Spec]:
    phones = phone_photos(data)
    placeholders = placeholder_specs(data)
    return [
        *photo_specs(data, phones),
        *in_store_specs(data, phones),
        *shop_specs(data),
        *hard_negative_specs(data),
        *placeholders,
        *degraded_specs(placeholders),
    ]


def photo_specs(data: Path, phones: dict[str, list[Path]]) -> list[Spec]:
    """Every photo kind of every catalog photo and grocery iconic image. Scene backgrounds come from in-store photos
    of products on the same side of the split."""
    backgrounds: dict[str, list[Path]] = {role: [] for role in ROLES}
    for product, paths in sorted(phones.items()):
        backgrounds[role_of(f"grocery:{product}")].extend(sorted(paths)[::6])
    specs = []
    for source in photo_sources(data):
        role = role_of(source.group)
        with Image.open(source.path) as image:
            longer = max(image.size)
        for kind in PHOTO_KINDS:
            if kind == "in_store" or kind == "mild_blur" and longer < MILD_BLUR_MIN_SIDE:
                continue
            key = f"{kind}:{source.path.name}"
            background = ""
            if kind.endswith("_scene"):
                pool = backgrounds[role]
                if pool and qd.rng_for(SEED, key, "background").random() < SCENE_BACKGROUND_SHARE:
                    background = str(pool[int(qd.rng_for(SEED, key, "pick").integers(len(pool)))])
            specs.append(Spec(key, kind, str(source.path), source.group, role, background))
    return specs


def in_store_specs(data: Path, phones: dict[str, list[Path]]) -> list[Spec]:
    """In-store photos: a few per training product, every one of a held-out product (real negatives for the
    false-reject rates)."""
    specs = []
    for product, paths in sorted(phones.items()):
        group = f"grocery:{product}"
        chosen = in_store_picks(paths) if role_of(group) == "train" else sorted(paths)
        specs.extend(
            Spec(f"in_store:{p.relative_to(data / 'grocery')}", "in_store", str(p), group, role_of(group))
            for p in chosen
        )
    return specs


def shop_specs(data: Path) -> list[Spec]:
    """Other shops' product photos as they are (products/): split by product where their licence lets them train
    shipped weights, test only (shops never trained on) where it does not."""
    return [
        Spec(
            f"shop:{p.path.name}",
            "shop",
            str(p.path),
            f"product:{p.product}",
            role_of(f"product:{p.product}") if p.trainable else "test",
        )
        for p in shop_photos(data)
    ]


def hard_negative_specs(data: Path) -> list[Spec]:
    """Thin side views, spec drawings and faded copies of the trainable photos (each on its source's side of the
    split), and rendered gift cards and text posters."""
    sources = [(s.path, s.group) for s in photo_sources(data)]
    sources += [(p.path, f"product:{p.product}") for p in shop_photos(data) if p.trainable]
    specs = []
    for index, (path, group) in enumerate(sources):
        kind = ("thin", "drawing", "blank")[index % HARD_NEGATIVE_STRIDE]
        specs.append(Spec(f"{kind}:{path.name}", kind, str(path), group, role_of(group)))
    for kind, count in (("card", N_CARD), ("poster", N_POSTER)):
        specs.extend(Spec(f"{kind}:{i}", kind, "", f"{kind}:{i}", role_of(f"{kind}:{i}")) for i in range(count))
    return specs


def degraded_specs(placeholders: list[Spec]) -> list[Spec]:
    """Shrunk, padded, softened copies of the first placeholders of each kind, on their parent's side of the split;
    the key names the parent (`ph_degraded:<parent key>`)."""
    specs = []
    for kind, count in DEGRADED_PER_KIND.items():
        parents = [p for p in placeholders if p.kind == kind][
            :: max(1, sum(p.kind == kind for p in placeholders) // count)
        ]
        specs.extend(Spec(f"ph_degraded:{p.key}", "ph_degraded", p.source, p.group, p.role) for p in parents[:count])
    return specs


def placeholder_specs(data: Path) -> list[Spec]:
    """Rendered placeholders (split by caption) and variants of the real ones (one family only in test; the
    products/ placeholders of a licence that may not train shipped weights only in test too)."""
    specs = []
    for i in range(N_TEXT):
        phrase = ps.PHRASES[i % len(ps.PHRASES)]
        specs.append(Spec(f"ph_text:{i}", "ph_text", "", f"phrase:{phrase}", role_of(f"phrase:{phrase}")))
    for kind, count in (("ph_glyph", N_GLYPH), ("ph_box", N_BOX)):
        for i in range(count):
            rng = qd.rng_for(SEED, kind, i, "caption")
            phrase = ps.PHRASES[int(rng.integers(len(ps.PHRASES)))] if rng.random() < 0.5 else None
            group = f"phrase:{phrase}" if phrase else f"{kind}:{i}"
            specs.append(Spec(f"{kind}:{i}", kind, "", group, role_of(group)))
    for path in sorted((data / "placeholders").glob("*.png")):
        family = path.stem.split("_")[0]
        role = "test" if family == HELD_OUT_PLACEHOLDER_FAMILY else "train"
        for i in range(REAL_PLACEHOLDER_VARIANTS + 1):  # variant 0: the file itself on white
            specs.append(Spec(f"ph_real:{path.name}:{i}", "ph_real", str(path), f"real-placeholder:{family}", role))
    for placeholder in shop_placeholders(data):
        group = f"real-placeholder:{placeholder.family}"
        role = "train" if placeholder.trainable else "test"
        for i in range(SHOP_PLACEHOLDER_VARIANTS + 1):
            specs.append(Spec(f"ph_shop:{placeholder.path.name}:{i}", "ph_shop", str(placeholder.path), group, role))
    return specs


# ---------------------------------------------------------------------------------------------- rendering


def encode(image: Image.Image, rng: np.random.Generator, png: bool = False) -> np.ndarray:
    return encode_image(image, "PNG") if png else encode_image(image, "JPEG", int(rng.integers(80, 96)))


def render(spec: Spec, fonts: list[Path] | None = None) -> tuple[np.ndarray, dict]:
    """Encoded file and its labels/metadata: {"labels": {head: 1.0 | 0.0 | None}, "sigma_work": ..., "area": ...}."""
    rng = qd.rng_for(SEED, spec.key)
    labels: dict[str, float | None] = {"blur": None, "small_object": None, "placeholder": None}
    if spec.kind in PLACEHOLDER_KINDS:
        labels["placeholder"] = 1.0
        if spec.kind == "ph_degraded":
            parent_key = spec.key.removeprefix("ph_degraded:")
            parent = Spec(parent_key, parent_key.split(":")[0], spec.source, spec.group, spec.role)
            image = hn.degraded_placeholder(render_placeholder(parent, qd.rng_for(SEED, parent_key), fonts), rng)
            return encode_image(image, "JPEG", int(rng.integers(25, 75))), {
                "labels": labels,
                "sigma_work": None,
                "area": None,
            }
        image = render_placeholder(spec, rng, fonts)
        return encode(image, rng, png=bool(rng.random() < 0.5)), {"labels": labels, "sigma_work": None, "area": None}

    labels["placeholder"] = 0.0
    if spec.kind in HARD_NEGATIVE_KINDS:
        return render_hard_negative(spec, rng, fonts), {"labels": labels, "sigma_work": None, "area": None}
    if spec.kind in ("original", "in_store"):
        data = np.fromfile(spec.source, dtype=np.uint8)
        with Image.open(spec.source) as image:
            area = qd.measured_area(image)
        if spec.kind == "original":
            labels.update(blur=0.0, small_object=qd.small_object_label(area))
        else:  # the product in hand or a crate of it fills the frame; some of these photos are really blurry
            labels.update(small_object=0.0)
        return data, {"labels": labels, "sigma_work": 0.0, "area": area}

    with Image.open(spec.source) as opened:
        if spec.kind.endswith(("_white", "_scene")) and min(opened.size) >= 800:
            opened.draft("RGB", (opened.width // 2, opened.height // 2))  # shrunk anyway: decode JPEG at 1/2 scale
        source = opened.convert("RGB")
    image, sigma_work, area = degrade(spec, source, rng)
    blur = qd.blur_label(sigma_work) if spec.kind in (*BLURRED_CROP_KINDS, "mild_blur") else 0.0
    labels.update(blur=blur, small_object=qd.small_object_label(area))
    return encode(image, rng), {"labels": labels, "sigma_work": sigma_work, "area": area}


def render_hard_negative(spec: Spec, rng: np.random.Generator, fonts: list[Path] | None) -> np.ndarray:
    """A hard negative's encoded file: a shop photo as it is, or a render (training.hard_negatives)."""
    if spec.kind == "shop":
        return np.fromfile(spec.source, dtype=np.uint8)
    fonts = ps.font_paths() if fonts is None else fonts
    font = fonts[int(rng.integers(len(fonts)))] if fonts else None
    if spec.kind == "card":
        return encode(hn.gift_card(rng, font), rng)
    if spec.kind == "poster":
        return encode(hn.text_poster(rng, font), rng)
    with Image.open(spec.source) as opened:
        opened.draft("RGB", (1000, 1000))  # JPEG: decode near the size every render shrinks to
        source = ps.on_white(opened)
    if spec.kind == "thin":
        return encode(hn.thin_side_view(source, rng), rng)
    if spec.kind == "drawing":
        return encode(hn.line_drawing(source, rng, font), rng, png=True)
    return encode(hn.near_blank(source, rng), rng)


def render_placeholder(spec: Spec, rng: np.random.Generator, fonts: list[Path] | None) -> Image.Image:
    fonts = ps.font_paths() if fonts is None else fonts
    font = fonts[int(rng.integers(len(fonts)))] if fonts else None
    phrase = spec.group.removeprefix("phrase:") if spec.group.startswith("phrase:") else None
    if spec.kind == "ph_text":
        return ps.text_placeholder(rng, phrase, font)
    if spec.kind == "ph_glyph":
        return ps.glyph_placeholder(rng, phrase, font)
    if spec.kind == "ph_box":
        return ps.grey_box(rng, phrase, font)
    with Image.open(spec.source) as png:  # ph_real, ph_shop
        return ps.real_placeholder_variant(png, rng, plain=spec.key.endswith(":0"))


def degrade(spec: Spec, source: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, float, float]:
    """(degraded image, blur sigma at the working resolution, object-box area fraction) of a photo kind."""
    if spec.kind in BLURRED_CROP_KINDS:
        return blurred_crop(spec.kind, source, rng)
    if spec.kind == "flat":
        image = qd.flat_colours(qd.crop_and_resize(source, rng, max_side=1000), rng)
        return image, 0.0, qd.measured_area(image)
    if spec.kind == "mild_blur":
        sigma = rng.uniform(0.002, 0.005) * max(source.size)
        return qd.gaussian_blur(source, sigma), sigma * qd.working_scale(source.size), qd.measured_area(source)
    small = spec.kind.startswith("small")
    target = rng.uniform(0.01, 0.075) if small else rng.uniform(0.13, 0.5 if spec.kind == "large_white" else 0.6)
    if spec.kind.endswith("_white"):
        image, area = qd.shrink_on_white(source, target, rng)
    else:
        background = None
        if spec.background:
            with Image.open(spec.background) as opened:
                background = opened.convert("RGB")
        image, area = qd.paste_on_scene(source, background, target, rng)
    return image, 0.0, area


def blurred_crop(kind: str, source: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, float, float]:
    """Crop-and-resize, then the kind's Gaussian or motion blur (sigma drawn at the working resolution)."""
    image = qd.crop_and_resize(source, rng)
    area = qd.measured_area(image)
    scale = qd.working_scale(image.size)
    sigma_work = 0.0
    if kind == "soft":
        sigma_work = rng.uniform(0.15, qd.BLUR_NEGATIVE_SIGMA)
    elif kind == "blur":
        sigma_work = math.exp(rng.uniform(math.log(qd.BLUR_POSITIVE_SIGMA), math.log(6.0)))
    elif kind == "sweep":
        sigma_work = math.exp(rng.uniform(math.log(0.1), math.log(4.0)))
    elif kind == "motion":
        sigma_work = math.exp(rng.uniform(math.log(qd.BLUR_POSITIVE_SIGMA), math.log(5.0)))
    if kind == "motion":
        image = qd.motion_blur(image, sigma_work * math.sqrt(12) / scale, rng.uniform(0, 180))
    elif sigma_work > 0:
        image = qd.gaussian_blur(image, sigma_work / scale)
    return image, sigma_work, area
