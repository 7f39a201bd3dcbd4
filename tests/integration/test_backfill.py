"""The catalog backfill against the real embedded stack (the session's tritonserver; a fresh embedded-PostgreSQL
database per test): killed mid-run and resumed (nothing lost, nothing done twice, counted by Triton itself), the same
answers as /v1/select, idempotent reruns and a new model version, dead letters after retries, the index build
(COPY, HNSW after the load, a real search), and `plan`.

Ray runs in this process for the in-process tests (`ray.init(num_cpus=2)`, no dashboard, usage stats off, shut down
after the module); the kill test runs the job as `python -m backfill` in its own session and kills that session."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest

from backfill import job
from backfill.__main__ import main as backfill_main
from backfill.manifest import read_manifest
from backfill.results import DEAD_LETTER, done_keys, read_parts
from backfill.versions import Versions
from gateway.clients.database import Database
from gateway.clients.triton import TritonAnalyzer
from gateway.decisions.search import search_vector
from gateway.settings import Settings
from gateway.stores.search_index import SearchIndex, partition_table
from tests.database import fresh_database
from tests.helpers import encode, product_photo

ROOT = Path(__file__).resolve().parents[2]
SIDE = 560  # above every category's min_side (sofa: 500), small enough to keep the tests quick
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"


def photo(folder: Path, name: str, seed: int, side: int = SIDE, **options) -> str:
    colour = ((53 * seed) % 200 + 30, (91 * seed) % 200 + 30, (37 * seed) % 200 + 30)
    path = folder / name
    path.write_bytes(encode(product_photo(side, colour, seed=seed), **options))
    return str(path)


def write_manifest(path: Path, products: list[dict]) -> str:
    path.write_text("".join(json.dumps(p) + "\n" for p in products))
    return str(path)


def job_settings(stack: Settings, **overrides) -> Settings:
    """The stack's Triton and model repository, a fresh database, loopback URLs allowed (the test image server)."""
    values = dict(
        triton_grpc_url=f"127.0.0.1:{stack.triton_grpc_port}",
        model_repository=stack.model_repository,
        database_url=fresh_database(),
        fetch_allow_private=True,
    )
    return Settings.from_env({}, **(values | overrides))


def analysed_images(stack: Settings) -> int:
    """Images the stack's Triton has analysed so far (the analyze ensemble's inference count)."""
    url = f"http://127.0.0.1:{stack.triton_http_port}/v2/models/analyze/stats"
    return httpx.get(url, timeout=10).json()["model_stats"][0]["inference_count"]


def pending_requests(stack: Settings) -> float:
    """Requests queued in any model of the stack's Triton (its metrics' pending-request gauges)."""
    text = httpx.get(f"http://127.0.0.1:{stack.triton_metrics_port}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("nv_inference_pending_request_count{"))  # fmt: skip


def settled_count(stack: Settings, quiet_s: int = 3) -> int:
    """The count once no call is queued or running any more: nothing pending, and the count unchanged for `quiet_s`
    seconds (a call a killed worker sent still completes in Triton)."""
    readings = [analysed_images(stack)]
    while len(readings) <= quiet_s or len(set(readings[-quiet_s - 1 :])) > 1 or pending_requests(stack):
        time.sleep(1.0)
        readings.append(analysed_images(stack))
    return readings[-1]


def rows(output: str, mode: str = "curate") -> list[dict]:
    table = read_parts(f"{output}/{mode}")
    return [] if table is None else table.to_pylist()


@pytest.fixture(scope="module")
def local_ray():
    import ray

    job.start_ray(2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def versions(stack) -> Versions:
    return job.default_versions(Settings.from_env({}, model_repository=stack.model_repository))


def subprocess_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGSEL_")}
    return env | {
        "PYTHONPATH": str(ROOT),
        "RAY_USAGE_STATS_ENABLED": "0",
        "IMGSEL_TRITON_GRPC_URL": settings.triton_grpc_url,
        "IMGSEL_MODEL_REPOSITORY": settings.model_repository,
        "IMGSEL_DATABASE_URL": settings.database_url.get_secret_value(),
    }


def kill_session(process: subprocess.Popen) -> None:
    """SIGKILL the job and everything it started: its descendants first (Ray's daemons and workers, found fast so
    the kill lands where the test saw the run), then anything else left in its session."""
    try:
        doomed = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        doomed = []
    for p in doomed:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    process.wait(timeout=30)
    stragglers = [p for p in psutil.process_iter() if _session(p.pid) == process.pid and p.status() != "zombie"]
    for p in stragglers:
        p.send_signal(signal.SIGKILL)
    psutil.wait_procs(doomed + stragglers, timeout=30)


def _session(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def test_killed_mid_run_then_resumed_loses_nothing_and_repeats_nothing(stack, tmp_path, versions):
    # Full-size photos here: batches slow enough that the kill lands between them.
    images = [[photo(tmp_path, f"k{n}-{i}.jpg", 100 + 2 * n + i, side=800) for i in range(2)] for n in range(24)]
    products = [{"product_id": f"k{n:02d}", "category": "sofa", "images": pair} for n, pair in enumerate(images)]
    manifest = write_manifest(tmp_path / "manifest.jsonl", products)
    settings = job_settings(stack)
    output = str(tmp_path / "out")
    command = [sys.executable, "-m", "backfill", "run", manifest, "--output", output, "--workers", "1",
               "--batch-size", "2", "--concurrency", "1", "--cpus", "1"]  # fmt: skip
    env = subprocess_env(settings)

    first = subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not done_keys(f"{output}/curate") and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.02)
    finally:
        kill_session(first)
    done_first = {r["product_id"] for r in rows(output)}
    assert 0 < len(done_first) < len(products), "the kill must land mid-run"
    before = settled_count(stack)

    second = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    report = json.loads(second.stdout)
    assert report["skipped"] == len(done_first) and report["done"] == len(products) - len(done_first)

    # Nothing done twice: Triton analysed exactly the images of the products the first run had not finished.
    assert settled_count(stack) - before == 2 * (len(products) - len(done_first))
    # Nothing lost: every product exactly once, with its versions and a real selection.
    results = rows(output)
    assert sorted(r["product_id"] for r in results) == [p["product_id"] for p in products]
    for r in results:
        assert (r["model_version"], r["categories_version"]) == (versions.model, versions.categories)
        assert r["selected"] and json.loads(r["response"])["selected"] == r["selected"]
        assert r["category"] == "sofa" and r["images"] == 2


def compared(response: dict) -> dict:
    """A /v1/select answer less the vote's exemplar counts, which depend on what each database has seen before."""
    for image in response["images"]:
        image.pop("placeholder_vote", None)
    return response


def test_results_are_the_v1_select_answers(stack, client, image_server, tmp_path, local_ray, versions):
    (image_server.root / "backfill-url.jpg").write_bytes(encode(product_photo(SIDE, (20, 120, 200), seed=7)))
    hero = photo(tmp_path, "hero.jpg", 1)
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(Path(hero).read_bytes())  # a second supplier sent the same file: a duplicate
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(Path(photo(tmp_path, "whole.jpg", 3)).read_bytes()[:600])
    products = [
        {"product_id": "dup", "category": "sofa", "images": [hero, photo(tmp_path, "side.jpg", 2), str(copy)]},
        {"product_id": "bad", "category": "sofa", "images": [photo(tmp_path, "ok.jpg", 4), str(corrupt),
                                                             str(tmp_path / "missing.jpg")]},
        {"product_id": "url", "category": "sofa", "images": [f"{image_server.url}/backfill-url.jpg",
                                                             photo(tmp_path, "other.jpg", 5)]},
    ]  # fmt: skip
    manifest = write_manifest(tmp_path / "manifest.jsonl", products)
    settings = job_settings(stack)
    output = str(tmp_path / "out")
    report = job.run(read_manifest(manifest), output, "curate", versions, settings, workers=1, batch_size=2)
    assert (report.done, report.dead_letter) == (3, 0)

    by_product = {r["product_id"]: r for r in rows(output)}
    for product in read_manifest(manifest):
        images = []
        for image in product.images:
            if image.is_url:
                images.append({"id": image.id, "url": image.source})
            elif Path(image.source).exists():
                images.append({"id": image.id, "data": base64.b64encode(Path(image.source).read_bytes()).decode()})
        body = {"product_id": product.product_id, "category": product.category, "images": images}
        answer = client.post("/v1/select", json=body)
        assert answer.status_code == 200, answer.text
        mine = json.loads(by_product[product.product_id]["response"])
        if product.product_id == "bad":  # the gateway was not sent the missing file: compare the rest
            missing = mine["images"].pop()
            assert (missing["status"], missing["reasons"]) == ("error", ["fetch_failed"])
        assert compared(mine) == compared(answer.json())
    assert by_product["dup"]["duplicates"] == 1 and by_product["dup"]["image_set_changed"]
    assert by_product["bad"]["dropped"] == 2


def test_rerun_skips_done_products_and_a_new_model_version_redoes_them(stack, tmp_path, local_ray, versions):
    manifest = write_manifest(
        tmp_path / "manifest.jsonl",
        [
            {"product_id": f"r{n}", "category": "sofa", "images": [photo(tmp_path, f"r{n}.jpg", 40 + n)]}
            for n in range(3)
        ],
    )
    products = read_manifest(manifest)
    settings = job_settings(stack)
    output = str(tmp_path / "out")
    assert job.run(products, output, "curate", versions, settings, workers=1).done == 3
    before = settled_count(stack)
    again = job.run(products, output, "curate", versions, settings, workers=1)
    assert (again.skipped, again.done) == (3, 0) and settled_count(stack) == before  # no Triton call at all

    retrained = Versions("retrained-model", versions.categories)
    redone = job.run(products, output, "curate", retrained, settings, workers=1)
    assert (redone.skipped, redone.done) == (0, 3)
    assert sorted(r["model_version"] for r in rows(output)) == sorted([retrained.model] * 3 + [versions.model] * 3)


def test_products_that_keep_failing_go_to_the_dead_letters_and_are_retried_next_run(stack, tmp_path, local_ray):
    manifest = write_manifest(
        tmp_path / "manifest.jsonl",
        [
            {"product_id": f"d{n}", "category": "sofa", "images": [photo(tmp_path, f"d{n}.jpg", 60 + n)]}
            for n in range(2)
        ],
    )
    products = read_manifest(manifest)
    down = job_settings(stack, triton_grpc_url="127.0.0.1:9", triton_timeout_s=2.0)  # nothing listens on port 9
    output = str(tmp_path / "out")
    versions = Versions("v", "c")
    report = job.run(products, output, "curate", versions, down, workers=1, attempts=2, backoff_s=0.05)
    assert (report.done, report.dead_letter) == (0, 2)
    dead = read_parts(f"{output}/{DEAD_LETTER}").to_pylist()
    assert sorted(r["product_id"] for r in dead) == ["d0", "d1"]
    assert all(r["attempts"] == 2 and "TritonUnavailable" in r["error"] for r in dead)
    assert done_keys(f"{output}/curate") == set()

    up = job_settings(stack)
    assert job.run(products, output, "curate", versions, up, workers=1).done == 2


def test_index_build_bulk_loads_partitions_and_answers_a_real_search(stack, tmp_path, local_ray, versions):
    manifest = write_manifest(
        tmp_path / "manifest.jsonl",
        [{"product_id": f"g{n}", "category": "gear", "images": [photo(tmp_path, f"g{n}-{i}.jpg", 80 + 3 * n + i)
                                                                for i in range(2)]}
         for n in range(4)]
        + [{"product_id": "broken", "category": "gear", "images": [str(tmp_path / "absent.jpg")]}],
    )  # fmt: skip
    settings = job_settings(stack)
    output = str(tmp_path / "out")
    report = job.run(read_manifest(manifest), output, "index", versions, settings, workers=1, batch_size=2)
    assert report.done == 5 and report.partitions == {"gear": 8}
    (broken,) = [r for r in rows(output, "index") if r["product_id"] == "broken"]
    assert broken["image_ids"] == [] and broken["failed"] == ["broken-1:fetch_failed"]

    url = settings.database_url.get_secret_value()
    with psycopg.connect(url) as conn:
        (definition,) = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexdef LIKE '%%hnsw%%'",
            (partition_table("gear"),),
        ).fetchone()
    assert "halfvec_cosine_ops" in definition

    async def search() -> list:
        triton = TritonAnalyzer(settings.triton_grpc_url, 30.0, 2.0)
        database = Database(url, 2, 10.0, False, 2.0)
        try:
            (query,) = await triton.analyze([Path(tmp_path / "g2-1.jpg").read_bytes()])
            vector = search_vector(query.embedding, query.search_embedding)  # the kind the index job stored
            return await SearchIndex(database, exact_max=2).search(vector, ["gear"], k=2)  # the HNSW path
        finally:
            await database.close()
            await triton.close()

    hits = asyncio.run(search())
    assert (hits[0].product_id, hits[0].image_id) == ("g2", "g2-2") and hits[0].score > 0.99


def test_plan_reports_the_sample_and_the_capacity(stack, tmp_path, local_ray, capsys, monkeypatch):
    products = [
        {
            "product_id": f"s{n}",
            "category": "sofa" if n < 4 else "bags",
            "images": [photo(tmp_path, f"s{n}-{i}.jpg", 200 + 2 * n + (i % 2)) for i in range(3)],
        }
        for n in range(6)
    ]  # fmt: skip; image 3 repeats image 1's seed: a duplicate in every product
    manifest = write_manifest(tmp_path / "manifest.jsonl", products)
    settings = job_settings(stack)
    for name, value in [("TRITON_GRPC_URL", settings.triton_grpc_url), ("MODEL_REPOSITORY", settings.model_repository),
                        ("DATABASE_URL", settings.database_url.get_secret_value())]:  # fmt: skip
        monkeypatch.setenv(f"IMGSEL_{name}", value)
    code = backfill_main(["plan", manifest, "--category", "sofa", "--sample", "3", "--workers", "1",
                          "--catalog-products", "1000000", "--deadline-hours", "24"])  # fmt: skip
    assert code == 0
    plan = json.loads(capsys.readouterr().out)["plan"]
    sample = plan["sample"]
    assert sample["products"] == 3 and sample["images_per_product_mean"] == 3.0
    assert sample["duplicates_share"] == 1.0 and sample["changed_share"] == 1.0
    assert sample["products_per_s_per_worker"] > 0 and sample["images_per_s"] > 0
    need = plan["capacity"]
    rate = 1_000_000 / (24 * 3600)
    assert abs(need["workers"] - math.ceil(rate / sample["products_per_s_per_worker"])) <= 1  # figures are rounded
    assert need["arithmetic"][1].endswith(f"= {need['workers']}")
    assert need["needed_products_per_s"] == round(rate, 3) and len(need["arithmetic"]) == 4
