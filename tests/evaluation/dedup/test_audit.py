"""evaluation.dedup audit: distinct-labelled pairs that are one photograph are found by replaying the plan, written
to same_photo.json, and left out by load_pairs(exclude_same_photo=True)."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from evaluation.dedup.audit import recropped_photo, same_photo
from evaluation.dedup.cli import main
from evaluation.dedup.generate import generate
from evaluation.dedup.pairset import SAME_PHOTO_FILE, load_pairs
from tests.evaluation.dedup.photos import COLOURS, read_rows
from tests.helpers import product_photo


def test_audit_finds_one_photo_filed_under_two_colours(tmp_path, capsys):
    source = tmp_path / "catalog"
    source.mkdir()
    lines = ["file,style,category,color,view"]
    for style in ("ab01", "ab02"):
        for colour in ("red", "blue"):
            k = len(lines)
            # ab01's blue is ab01's red photograph saved again (as a shop's sample data sometimes does)
            seed = 1 if (style, colour) == ("ab01", "blue") else k
            product_photo(side=128, colour=COLOURS[seed % len(COLOURS)], seed=seed).save(source / f"{k}.jpg")
            lines.append(f"{k}.jpg,{style},ab,{colour},main")
    (source / "manifest.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "pairs"
    generate(source, out, seed=0, n_pairs=24)

    assert main(["audit", "--pairs", str(out)]) == 0
    found = json.loads((out / SAME_PHOTO_FILE).read_text())
    rows = {int(r["pair_id"]): r for r in read_rows(out)}
    assert found, capsys.readouterr().out
    for pair in found:  # only the ab01 red/blue colourway, never a synthetic edit or another style
        assert rows[pair["pair_id"]]["kind"].startswith("colourway") and rows[pair["pair_id"]]["label"] == "0"
        assert {pair["a"], pair["b"]} == {"1.jpg", "2.jpg"}
    assert same_photo(source / "1.jpg", source / "2.jpg") and not same_photo(source / "1.jpg", source / "3.jpg")

    everything, kept = load_pairs([out]), load_pairs([out], exclude_same_photo=True)
    assert len(everything) - len(kept) == len(found)


def test_excluding_needs_the_audit_first(tmp_path):
    source = tmp_path / "photos"
    source.mkdir()
    for k in range(3):
        product_photo(side=96, colour=COLOURS[k], seed=k).save(source / f"p{k}.jpg")
    generate(source, tmp_path / "pairs", seed=0, n_pairs=8)
    with pytest.raises(FileNotFoundError, match="audit"):
        load_pairs([tmp_path / "pairs"], exclude_same_photo=True)


def test_recropped_photo_sees_a_recropped_rescaled_export_and_not_another_view(tmp_path):
    """A shop's second file that is its main photograph with other margins at another size is one photograph; the
    same product seen upside down (another view of it) is not."""
    main = product_photo(side=400, colour=COLOURS[0], seed=5)
    canvas = Image.new("RGB", (520, 460), (255, 255, 255))
    canvas.paste(main.resize((380, 380), Image.Resampling.LANCZOS), (100, 40))
    main.save(tmp_path / "main.jpg")
    canvas.save(tmp_path / "export.png")
    main.transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(tmp_path / "other.jpg")
    assert recropped_photo(tmp_path / "main.jpg", tmp_path / "export.png")
    assert not same_photo(tmp_path / "main.jpg", tmp_path / "export.png")  # other sizes: not at the preview size
    assert not recropped_photo(tmp_path / "main.jpg", tmp_path / "other.jpg")
