"""The review loop that grows a compliance check (issue #14; the published system's method for rare concepts): score
a folder with the current head, auto-accept the confident finds, queue the uncertain ones for a person, expand each
find with its nearest catalog images from the search index, retrain from the labels, and measure every round on a
fixed check set.

    python -m training.review score --head build_engines/heads/compliance_weapons.onnx --images DIR --out ROUND \
        [--accept 0.9] [--review-from 0.2] [--search-url http://127.0.0.1:8080 --neighbours 5]
    (a person opens ROUND/review.html, labels with the keyboard or the buttons, downloads labels.csv into ROUND)
    python -m training.review retrain --round ROUND --positives DIR --negatives DIR --check-set CHECK.csv \
        --name weapons [--out build_engines/heads]

`score` writes ROUND/hits.csv (score >= --accept: taken as positives without review), ROUND/queue.csv (--review-from
<= score < --accept, the most uncertain first), ROUND/review.html (one self-contained page: thumbnails, a yes/no
button pair per image, keys j/k to move, y/n to label, u to clear, and a button that downloads labels.csv; labels also
survive a reload in the browser's localStorage) and, with --search-url, ROUND/neighbours.csv (each hit's nearest
catalog images from the gateway's POST /v1/search: candidates for the next round's folder). `retrain` trains on the
folders plus the hits and the labelled queue (training.compliance_head), writes the head and its card, and appends the
round's precision and recall on the check set (CSV `path,label`, never trained on) to ROUND/../rounds.json.
"""

from __future__ import annotations

import argparse
import base64
import csv
import html
import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from build_engines.artifacts import HEADS_DIR
from contract.tensors import COMPLIANCE_HEAD_PREFIX, EMBEDDING
from training import compliance_head
from training.metrics import at_threshold

THUMB_SIDE = 160
Neighbours = Callable[[Path, int], list[dict]]


@dataclass
class Scored:
    path: Path
    score: float


def head_scores(head: Path, embeddings: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(head), providers=["CPUExecutionProvider"])
    return session.run(None, {EMBEDDING.name: embeddings.astype(np.float32)})[0][:, 0]


def embed_paths(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings of the decodable ones, their mask over `paths`)."""
    from training.embeddings import embed_files

    embeddings, valid = embed_files(paths)
    return embeddings[valid], valid


def split(scored: list[Scored], accept: float, review_from: float) -> tuple[list[Scored], list[Scored]]:
    """(hits: score >= accept, highest first; queue: review_from <= score < accept, the most uncertain (nearest 0.5,
    the head's operating point) first)."""
    hits = sorted((s for s in scored if s.score >= accept), key=lambda s: -s.score)
    queue = sorted((s for s in scored if review_from <= s.score < accept), key=lambda s: abs(s.score - 0.5))
    return hits, queue


def thumbnail_data_uri(path: Path) -> str:
    with Image.open(path) as image:
        image = image.convert("RGB")
        image.thumbnail((THUMB_SIDE, THUMB_SIDE))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


REVIEW_SCRIPT = """
const items = [...document.querySelectorAll('.item')];
const key = 'imgsel-review:' + document.body.dataset.round;
const labels = JSON.parse(localStorage.getItem(key) || '{}');
let current = 0;
function show() {
  items.forEach((item, i) => {
    const label = labels[item.dataset.path];
    item.dataset.label = label === undefined ? '' : String(label);
    item.classList.toggle('current', i === current);
  });
  document.getElementById('done').textContent = Object.keys(labels).length + ' / ' + items.length + ' labelled';
  localStorage.setItem(key, JSON.stringify(labels));
}
function label(i, value) {
  const path = items[i].dataset.path;
  if (value === null) { delete labels[path]; } else { labels[path] = value; }
  show();
}
function move(step) { current = Math.max(0, Math.min(items.length - 1, current + step)); show(); }
document.addEventListener('keydown', (event) => {
  const actions = {j: () => move(1), k: () => move(-1), y: () => { label(current, 1); move(1); },
                   n: () => { label(current, 0); move(1); }, u: () => label(current, null)};
  if (actions[event.key]) { actions[event.key](); event.preventDefault(); }
});
items.forEach((item, i) => {
  item.querySelector('.yes').onclick = () => { current = i; label(i, 1); };
  item.querySelector('.no').onclick = () => { current = i; label(i, 0); };
});
function labelsCsv() {
  const rows = items.filter(item => labels[item.dataset.path] !== undefined)
                    .map(item => '"' + item.dataset.path.replaceAll('"', '""') + '",' + labels[item.dataset.path]);
  return ['path,label', ...rows].join('\\n') + '\\n';
}
document.getElementById('download').onclick = () => {
  const link = document.createElement('a');
  link.href = URL.createObjectURL(new Blob([labelsCsv()], {type: 'text/csv'}));
  link.download = 'labels.csv';
  link.click();
};
show();
"""

REVIEW_STYLE = """
body { font-family: sans-serif; margin: 1rem; }
.items { display: flex; flex-wrap: wrap; gap: 0.75rem; }
.item { border: 3px solid #ddd; padding: 0.4rem; width: 176px; font-size: 0.8rem; }
.item.current { border-color: #246; }
.item[data-label="1"] { background: #fdd; }
.item[data-label="0"] { background: #dfd; }
.item img { display: block; margin: 0 auto 0.3rem; }
.name { overflow-wrap: anywhere; }
"""


def review_page(round_name: str, check: str, queue: list[Scored]) -> str:
    """The self-contained labelling page of one round (see the module docstring)."""
    cards = []
    for item in queue:
        path = html.escape(str(item.path), quote=True)
        cards.append(
            f'<div class="item" data-path="{path}"><img src="{thumbnail_data_uri(item.path)}" alt="">'
            f'<div class="name">{html.escape(item.path.name)}</div><div>score {item.score:.3f}</div>'
            '<button class="yes">yes (y)</button> <button class="no">no (n)</button></div>'
        )
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>review: {html.escape(check)}</title>'
        f"<style>{REVIEW_STYLE}</style></head>"
        f'<body data-round="{html.escape(round_name, quote=True)}">'
        f"<h1>Does the image show <em>{html.escape(check)}</em>?</h1>"
        "<p>Keys: j / k next / previous, y yes, n no, u clear. Labels stay in this browser until you download them; "
        "save labels.csv into the round's folder for <code>retrain</code>.</p>"
        '<p><span id="done"></span> <button id="download">download labels.csv</button></p>'
        f'<div class="items">{"".join(cards)}</div><script>{REVIEW_SCRIPT}</script></body></html>\n'
    )


def write_scored(path: Path, rows: list[Scored], with_label: bool = False) -> None:
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["path", "score", *(["label"] if with_label else [])])
        for row in rows:
            writer.writerow([str(row.path), f"{row.score:.6f}", *([""] if with_label else [])])


def search_neighbours(search_url: str) -> Neighbours:
    """Nearest catalog images of a picture from a running gateway's POST /v1/search (the flat search: a find should
    lead to look-alikes in every partition)."""
    import httpx

    client = httpx.Client(base_url=search_url, timeout=60)

    def neighbours(path: Path, k: int) -> list[dict]:
        body = {"image": {"data": base64.b64encode(path.read_bytes()).decode()}, "k": k, "cascade": False}
        response = client.post("/v1/search", json=body)
        response.raise_for_status()
        return response.json()["results"]

    return neighbours


def score_round(
    head: Path,
    images: list[Path],
    out: Path,
    accept: float = 0.9,
    review_from: float = 0.2,
    neighbours: Neighbours | None = None,
    k: int = 5,
) -> dict:
    """Write one round's hits, queue, page (and neighbours); returns the counts."""
    if not review_from < accept:
        raise ValueError(f"--review-from ({review_from}) must be below --accept ({accept})")
    embeddings, valid = embed_paths(images)
    scores = head_scores(head, embeddings)
    scored = [Scored(path, float(score)) for path, score in zip([p for p, v in zip(images, valid) if v], scores)]
    hits, queue = split(scored, accept, review_from)
    out.mkdir(parents=True, exist_ok=True)
    write_scored(out / "hits.csv", hits)
    write_scored(out / "queue.csv", queue, with_label=True)
    check = head.stem.removeprefix(COMPLIANCE_HEAD_PREFIX)
    (out / "review.html").write_text(review_page(out.name, check, queue))
    if neighbours is not None:
        with open(out / "neighbours.csv", "w", newline="") as found:
            writer = csv.writer(found)
            writer.writerow(["hit", "product_id", "image_id", "category", "score"])
            for hit in hits:
                for result in neighbours(hit.path, k):
                    row = [result["product_id"], result["image_id"], result["category"], result["score"]]
                    writer.writerow([str(hit.path), *row])
    return {"scored": len(scored), "undecodable": int((~valid).sum()), "hits": len(hits), "queue": len(queue)}


def read_labels(path: Path) -> dict[Path, int]:
    with open(path, newline="") as labels:
        return {Path(row["path"]): int(row["label"]) for row in csv.DictReader(labels) if row["label"] in ("0", "1")}


def read_column(path: Path) -> list[Path]:
    with open(path, newline="") as rows:
        return [Path(row["path"]) for row in csv.DictReader(rows)]


def retrain_round(
    round_dir: Path,
    positives: list[Path],
    negatives: list[Path],
    check_set: Path,
    name: str,
    out: Path = HEADS_DIR,
    embed: Callable[[list[Path]], tuple[np.ndarray, np.ndarray]] = embed_paths,
) -> dict:
    """Train on the folders + the round's hits and labelled queue; measure on the check set; log the round."""
    labels = read_labels(round_dir / "labels.csv") if (round_dir / "labels.csv").is_file() else {}
    check = read_labels(check_set)
    if set(check) & (set(positives) | set(negatives) | set(labels)):
        raise ValueError("the check set must never be trained on: it shares images with the training data")
    grown_positives = positives + read_column(round_dir / "hits.csv") + [p for p, v in labels.items() if v == 1]
    grown_negatives = negatives + [p for p, v in labels.items() if v == 0]
    positive_rows, negative_rows = embed(grown_positives)[0], embed(grown_negatives)[0]
    head = compliance_head.train(positive_rows, negative_rows, name)
    check_paths = list(check)
    check_rows, decodable = embed(check_paths)
    check_scores = head.scores(check_rows.astype(np.float32))
    truth = np.array([check[p] for p in check_paths])[decodable]
    compliance_head.write(head, out, np.concatenate([positive_rows[:8], negative_rows[:8]]))
    entry = {
        "round": round_dir.name,
        "positives": len(grown_positives),
        "negatives": len(grown_negatives),
        "labelled_in_round": len(labels),
        "check_set": {"path": str(check_set), **at_threshold(check_scores, truth, 0.5)},
        "held_out": head.card["held_out"],
    }
    log = round_dir.parent / "rounds.json"
    rounds = json.loads(log.read_text()) if log.is_file() else []
    log.write_text(json.dumps([r for r in rounds if r["round"] != entry["round"]] + [entry], indent=2) + "\n")
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    score = commands.add_parser("score")
    score.add_argument("--head", type=Path, required=True)
    score.add_argument("--images", type=Path, required=True)
    score.add_argument("--out", type=Path, required=True)
    score.add_argument("--accept", type=float, default=0.9)
    score.add_argument("--review-from", type=float, default=0.2)
    score.add_argument("--search-url")
    score.add_argument("--neighbours", type=int, default=5)
    retrain = commands.add_parser("retrain")
    retrain.add_argument("--round", type=Path, required=True)
    retrain.add_argument("--positives", type=Path, required=True)
    retrain.add_argument("--negatives", type=Path, required=True)
    retrain.add_argument("--check-set", type=Path, required=True)
    retrain.add_argument("--name", required=True)
    retrain.add_argument("--out", type=Path, default=HEADS_DIR)
    args = parser.parse_args(argv)
    if args.command == "score":
        neighbours = search_neighbours(args.search_url) if args.search_url else None
        images = compliance_head.image_files(args.images)
        result = score_round(args.head, images, args.out, args.accept, args.review_from, neighbours, args.neighbours)
    else:
        positives = compliance_head.image_files(args.positives)
        negatives = compliance_head.image_files(args.negatives)
        name = compliance_head.check_name(args.name)
        result = retrain_round(args.round, positives, negatives, args.check_set, name, args.out)
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
