"""Before/after report of one selection: the input images grouped by supplier, and the selected set in page order.

One self-contained HTML page (inline CSS, thumbnails inlined as small base64 JPEGs, no script, no external asset)
that a person can open from disk or mail around. This is the command-line client: it posts to a running gateway's
POST /v1/report and writes the page:

    python -m tools.report --request request.json --out report.html
    python -m tools.report --images DIR_OR_FILE... --product-id P [--category C] [--colour NAME] \\
        [--supplier-from-dirname] [--max-images N] [--url http://127.0.0.1:8080] --out report.html

`--request` posts a /v1/select body as it is (images by URL or base64). `--images` reads local files (folders are
walked recursively for image files; an id is the path below the folder given) and sends them base64; with
`--supplier-from-dirname` each image's supplier is the name of the folder that holds it.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Sequence
from pathlib import Path

# What the CLI sends; the gateway decides what it can decode (unsupported formats come back `unsupported_format`).
IMAGE_SUFFIXES = frozenset(
    ".jpg .jpeg .jpe .jfif .png .webp .bmp .tif .tiff .jp2 .j2k .jpx .pnm .ppm .pgm .pbm .gif .heic .heif .avif".split()
)


def _image_files(paths: Sequence[str]) -> list[tuple[str, Path]]:
    """(id, file) for every image file under the given folders or among the given files, ids unique."""
    found: list[tuple[str, Path]] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            found += [(p.relative_to(path).as_posix(), p) for p in files]
        elif path.is_file():
            found.append((path.name, path))
        else:
            raise SystemExit(f"no such file or folder: {given}")
    taken: set[str] = set()
    unique = []
    for image_id, path in found:
        candidate, copy = image_id, 1
        while candidate in taken:
            copy += 1
            candidate = f"{image_id}#{copy}"
        taken.add(candidate)
        unique.append((candidate, path))
    return unique


def request_from_files(
    paths: Sequence[str],
    product_id: str,
    category: str | None = None,
    supplier_from_dirname: bool = False,
    max_images: int | None = None,
    colour: str | None = None,
) -> dict:
    """A /v1/select body for local image files, sent base64."""
    images = []
    for image_id, path in _image_files(paths):
        image = {"id": image_id, "data": base64.b64encode(path.read_bytes()).decode("ascii")}
        if supplier_from_dirname:
            image["supplier"] = path.resolve().parent.name
        images.append(image)
    if not images:
        raise SystemExit(f"no image files in {' '.join(paths)}")
    body: dict = {"product_id": product_id, "images": images}
    if category is not None:
        body["category"] = category
    if max_images is not None:
        body["max_images"] = max_images
    if colour is not None:
        body["colour"] = colour
    return body


def main(argv: Sequence[str] | None = None) -> int:
    import httpx

    parser = argparse.ArgumentParser(
        prog="python -m tools.report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--request", help="a /v1/select JSON body (images by url or base64 data)")
    source.add_argument("--images", nargs="+", metavar="DIR_OR_FILE", help="local image files or folders")
    parser.add_argument("--product-id", help="product id (with --images)")
    parser.add_argument("--category", help="category (with --images; default: the gateway's fallback)")
    parser.add_argument("--max-images", type=int, help="cap on the selection (with --images)")
    parser.add_argument("--colour", help="the product's colour, e.g. navy (with --images)")
    parser.add_argument(
        "--supplier-from-dirname", action="store_true", help="supplier = name of the folder holding each image"
    )
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="gateway base URL")
    parser.add_argument("--out", default="report.html", help="HTML file to write")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the gateway")
    args = parser.parse_args(argv)

    if args.request:
        if args.product_id or args.category or args.max_images or args.colour or args.supplier_from_dirname:
            parser.error(
                "--product-id, --category, --max-images, --colour and --supplier-from-dirname go with --images"
            )
        body = json.loads(Path(args.request).read_text())
    else:
        if not args.product_id:
            parser.error("--images needs --product-id")
        body = request_from_files(
            args.images, args.product_id, args.category, args.supplier_from_dirname, args.max_images, args.colour
        )
    endpoint = args.url.rstrip("/") + "/v1/report"
    try:
        response = httpx.post(endpoint, json=body, timeout=args.timeout)
    except httpx.HTTPError as error:
        print(f"no answer from {endpoint}: {error} (is the gateway running? `make run` starts it)", file=sys.stderr)
        return 2
    if response.status_code != 200:
        print(f"{endpoint} answered {response.status_code}: {response.text[:2000]}", file=sys.stderr)
        return 1
    Path(args.out).write_text(response.text, encoding="utf-8")
    print(f"wrote {args.out} ({len(body['images'])} images, {len(response.content) / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
