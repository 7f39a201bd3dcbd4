"""Manifests (JSONL, CSV, Parquet; per-product or per-image rows; relative paths), the product fingerprint, the
versions in the idempotency key, and whole-or-nothing part files."""

from __future__ import annotations

import hashlib
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from backfill.manifest import ManifestError, Product, read_manifest, select_request
from backfill.results import RESULT_SCHEMA, done_keys, write_part
from backfill.versions import Versions, categories_version, model_version, result_key


def test_jsonl_csv_and_parquet_give_the_same_products(tmp_path):
    rows = [
        {"product_id": "p1", "category": "apparel", "images": ["a.jpg", {"id": "x", "url": "https://cdn/x.jpg"}]},
        {"product_id": "p2", "images": [{"path": "/data/b.jpg", "supplier": "B"}]},
    ]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    (tmp_path / "m.csv").write_text(
        "product_id,category,image,image_id,supplier\np1,apparel,a.jpg,,\np1,,https://cdn/x.jpg,x,\n"
        "p2,,/data/b.jpg,,B\n"
    )
    pq.write_table(pa.Table.from_pylist([{"product_id": r["product_id"], "images": [json.dumps(i) if isinstance(
        i, dict) else i for i in r["images"]]} for r in rows]), tmp_path / "unused.parquet")  # fmt: skip
    per_image = [
        {"product_id": "p1", "category": "apparel", "image": "a.jpg", "image_id": None, "supplier": None},
        {"product_id": "p1", "category": None, "image": "https://cdn/x.jpg", "image_id": "x", "supplier": None},
        {"product_id": "p2", "category": None, "image": "/data/b.jpg", "image_id": None, "supplier": "B"},
    ]
    pq.write_table(pa.Table.from_pylist(per_image), tmp_path / "m.parquet")
    expected = read_manifest(str(tmp_path / "m.jsonl"))
    assert [p.product_id for p in expected] == ["p1", "p2"]
    p1 = expected[0]
    assert p1.category == "apparel"
    assert [(i.id, i.source) for i in p1.images] == [("p1-1", f"{tmp_path}/a.jpg"), ("x", "https://cdn/x.jpg")]
    assert expected[1].images[0].supplier == "B" and expected[1].category is None
    assert read_manifest(str(tmp_path / "m.csv")) == expected
    assert read_manifest(str(tmp_path / "m.parquet")) == expected


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"images": ["a.jpg"]}, "product_id"),
        ({"product_id": "p"}, "give `images`"),
        ({"product_id": "p", "images": [{"id": "a"}]}, "needs a `url` or `path`"),
    ],
)
def test_bad_rows_name_the_row_and_field(tmp_path, line, message):
    (tmp_path / "m.jsonl").write_text(json.dumps(line) + "\n")
    with pytest.raises(ManifestError, match=message):
        read_manifest(str(tmp_path / "m.jsonl"))


def test_a_repeated_product_and_a_bad_format_are_refused(tmp_path):
    (tmp_path / "m.jsonl").write_text('{"product_id": "p", "images": ["a"]}\n{"product_id": "p", "images": ["b"]}\n')
    with pytest.raises(ManifestError, match="appears twice"):
        read_manifest(str(tmp_path / "m.jsonl"))
    with pytest.raises(ManifestError, match="one of"):
        read_manifest(str(tmp_path / "m.txt"))


def test_select_request_runs_the_api_checks_but_keeps_file_sources(tmp_path):
    (tmp_path / "m.jsonl").write_text('{"product_id": "p", "images": [{"id": "a", "path": "/x.jpg"}, "/y.jpg"]}\n')
    (product,) = read_manifest(str(tmp_path / "m.jsonl"))
    request = select_request(product)
    assert [(i.id, i.url) for i in request.images] == [("a", "/x.jpg"), ("p-2", "/y.jpg")]
    twice = Product("p", None, product.images[:1] * 2)
    with pytest.raises(ValueError, match="duplicate image id"):
        select_request(twice)


def test_a_products_colour_reaches_its_request_and_fingerprint(tmp_path):
    (tmp_path / "m.csv").write_text("product_id,colour,image\np,,/a.jpg\np,Navy,/b.jpg\nq,,/c.jpg\n")
    p, q = read_manifest(str(tmp_path / "m.csv"))
    assert (p.colour, q.colour) == ("Navy", None)
    assert select_request(p).colour == "Navy" and select_request(q).colour is None
    assert Product.from_json(p.to_json()) == p
    assert p.fingerprint() != Product(p.product_id, p.category, p.images).fingerprint()
    with pytest.raises(ValueError, match="colour"):
        select_request(Product("p", None, p.images, "x" * 65))


def test_fingerprint_and_key_change_with_inputs_and_versions():
    product = Product.from_json('{"product_id": "p", "category": null, "images": [{"id": "a", "source": "/a.jpg"}]}')
    assert Product.from_json(product.to_json()) == product
    other = Product("p", "apparel", product.images)
    assert product.fingerprint() != other.fingerprint()
    # a product without a colour keeps the fingerprint it had before products had colours (done work stays done)
    before = json.dumps(["p", None, [["a", "/a.jpg", None]]], separators=(",", ":"))
    assert product.fingerprint() == hashlib.sha256(before.encode()).hexdigest()
    v = Versions("m1", "c1")
    key = result_key(product.fingerprint(), v, "curate")
    assert key == result_key(product.fingerprint(), Versions("m1", "c1"), "curate")
    assert len({key, result_key(product.fingerprint(), Versions("m2", "c1"), "curate"),
                result_key(product.fingerprint(), Versions("m1", "c2"), "curate"),
                result_key(product.fingerprint(), v, "index")}) == 4  # fmt: skip


def test_model_version_hashes_the_models_not_the_machine_paths(tmp_path):
    def repository(root, venv: str, weights: bytes):
        (root / "vision" / "1").mkdir(parents=True)
        (root / "vision" / "1" / "model.onnx").write_bytes(weights)
        (root / "vision" / "config.pbtxt").write_text(
            f'name: "vision"\nparameters {{ key: "EXECUTION_ENV_PATH" value: {{ string_value: "{venv}" }} }}\n'
        )
        (root / "vision" / "1" / "__pycache__").mkdir()
        (root / "vision" / "1" / "__pycache__" / "x.pyc").write_bytes(b"noise")
        return root

    here = model_version(repository(tmp_path / "a", "/home/a/.venv", b"weights"))
    assert here == model_version(repository(tmp_path / "b", "/opt/venv", b"weights"))
    (tmp_path / "b" / "README.md").write_text("not a model")
    assert here == model_version(tmp_path / "b")
    assert here != model_version(repository(tmp_path / "c", "/opt/venv", b"other weights"))
    with pytest.raises(FileNotFoundError, match="make repo"):
        model_version(tmp_path / "empty")


def test_categories_version_follows_the_file(tmp_path):
    path = tmp_path / "categories.toml"
    path.write_text("[defaults]\n")
    first = categories_version(path)
    path.write_text("[defaults]\nmax_images = 3\n")
    assert categories_version(path) != first
    assert len(categories_version()) == 16  # the project's own file


def test_parts_are_whole_and_give_the_done_keys(tmp_path):
    folder = str(tmp_path / "out" / "curate")
    assert done_keys(folder) == set()
    (tmp_path / "out" / "curate").mkdir(parents=True)
    (tmp_path / "out" / "curate" / ".part-x.123.tmp").write_bytes(b"half a file from a killed run")
    row = {name: None for name in RESULT_SCHEMA.names} | {"key": "k1", "product_id": "p1"}
    write_part(folder, "part-1", [row, row | {"key": "k2"}], RESULT_SCHEMA)
    assert done_keys(folder) == {"k1", "k2"}


def test_the_cli_refuses_a_bad_manifest_before_starting_anything(tmp_path, capsys):
    from backfill.__main__ import main

    assert main(["run", str(tmp_path / "absent.jsonl"), "--output", str(tmp_path / "out")]) == 2
    (tmp_path / "m.csv").write_text("product_id,category,image\np1,apparel,a.jpg\n")
    assert main(["plan", str(tmp_path / "m.csv"), "--category", "sofa", "--catalog-products", "10",
                 "--deadline-hours", "1"]) == 2  # fmt: skip
    assert "no product of category 'sofa'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
