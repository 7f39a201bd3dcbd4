"""The benchmark's reading of Server-Timing and its report (the runs themselves need a stack: `make bench`)."""

from __future__ import annotations

from loadtest.bench import markdown, phase_summary, server_timing
from loadtest.stack_processes import memory_mb


def test_server_timing_is_read_as_milliseconds_by_name():
    header = "total;dur=41.17, triton;dur=12.73, fetch;dur=0.27, database;dur=2.98, gateway;dur=25.19"
    assert server_timing(header) == {"total": 41.17, "triton": 12.73, "fetch": 0.27, "database": 2.98, "gateway": 25.19}
    assert server_timing("") == {} and server_timing("cache;desc=hit, gateway;dur=3") == {"gateway": 3.0}


def test_phase_summary_gives_the_gateways_p50_p99_the_overheads_and_the_waits_medians():
    timings = [
        {"gateway": float(g), "overhead": g + 2.0, "triton": 100.0 + g, "fetch": 1.0, "database": 2.0}
        for g in range(1, 101)
    ]
    summary = phase_summary(timings)
    assert summary["gateway_p50_ms"] == 51.0 and summary["gateway_p99_ms"] == 100.0
    assert summary["triton_p50_ms"] == 151.0 and summary["fetch_p50_ms"] == 1.0 and summary["database_p50_ms"] == 2.0
    assert summary["overhead_p50_ms"] == 53.0 and summary["overhead_p99_ms"] == 102.0
    assert summary["decisions_p99_ms"] is None and summary["overhead_less_decisions_p99_ms"] is None  # not reported
    assert phase_summary([])["gateway_p99_ms"] is None  # no answered product: nothing to report


def test_the_overhead_less_decisions_is_taken_per_product():
    # Every 10th product's decisions take 10 ms more, which is all of its extra overhead: the overhead's p99 is those
    # products', the rest of the overhead's p99 is the others' 4.9 ms (not 14.0 - 10.5 of percentiles taken apart).
    timings = [{"overhead": 4.5 + (k % 10) * 0.1, "decisions": 0.5} for k in range(100)]
    for timing in timings[::10]:
        timing["overhead"], timing["decisions"] = 14.0, 10.5
    summary = phase_summary(timings)
    assert summary["decisions_p99_ms"] == 10.5 and summary["overhead_p99_ms"] == 14.0
    assert summary["overhead_less_decisions_p99_ms"] == 4.9 and summary["overhead_less_decisions_p50_ms"] == 4.5


def test_the_report_has_the_phase_table_the_references_and_the_ratios():
    run = {"concurrency": 4, "products_per_s": 6.0, "images_per_s": 48.0, "p50_ms": 600.0, "p99_ms": 900.0}
    run |= {"products": 180, "failures": 0, **phase_summary([{"gateway": 4.5, "overhead": 5.5, "triton": 500.0}])}
    report = {
        "machine": "x86_64, 2 cores",
        "data": "synthetic",
        "runs": [run],
        "idle_memory_mb": {"rss": {"gateway": 150.0, "total": 900.0}, "pss": {"gateway": 120.0, "total": 700.0}},
        "idle_after_load_memory_mb": {"rss": {"total": 1300.0}, "pss": {"gateway": 170.0, "total": 800.0}},
        "dali_floor_images_per_s": 430.0,
        "service_to_floor_ratio": 0.112,
        "reference": {
            "processes": 2,
            "model": "model_repository/vision/1/model.onnx",
            "pillow_floor_images_per_s": 300.0,
            "naive_loop_images_per_s": 40.0,
            "naive_loop_before_stack_images_per_s": 38.5,
            "vision": "model_repository/vision/1/model.onnx",
            "service_work_images_per_s": 60.0,
        },
        "service_to_naive_ratio": 1.2,
        "service_to_own_work_ratio": 0.8,
        "own_work_to_naive_ratio": 1.5,
    }
    text = markdown(report)
    assert (
        "| 4 | 4.5 | 4.5 | 5.5 | 5.5 | None | None | None | None | None | None | None | 500.0 | None | None |" in text
    )
    assert "Pillow decode + resize to 224, 2 processes: 300.0 images/s." in text
    assert "40.0 images/s" in text and "naive loop (the faster of its runs) = 1.2" in text
    assert "The same naive loop before the stack started: 38.5 images/s." in text
    assert "no server): 60.0 images/s, the ceiling" in text and "/ its own work in-process = 0.8" in text
    assert "after the warm-up, 5 s after the last request (MB): PSS total 700.0, RSS total 900.0" in text
    assert "after the load, 5 s after the last request (MB): PSS total 800.0, RSS total 1300.0" in text
    assert "PSS by process: gateway 170.0" in text


def test_memory_of_live_processes_has_both_totals_and_skips_the_gone():
    import os

    usage = memory_mb({"me": os.getpid(), "gone": 2**22 + 12345})
    assert set(usage) == {"rss", "pss"} and "gone" not in usage["rss"]
    assert 0 < usage["pss"]["me"] <= usage["rss"]["me"] == usage["rss"]["total"]
    twice = memory_mb({"me twice": [os.getpid(), os.getpid()]})
    assert abs(twice["rss"]["me twice"] - 2 * usage["rss"]["me"]) < 5  # a name's PIDs are summed


def test_the_ratio_to_the_naive_loop_is_taken_against_its_faster_run(monkeypatch):
    from loadtest import bench

    monkeypatch.setattr(bench, "dali_floor", lambda files, seconds: 400.0)
    rows = {
        "processes": 2,
        "model": "m.onnx",
        "pillow_floor_images_per_s": 300.0,
        "naive_loop_images_per_s": 100.0,
        "service_work_images_per_s": 200.0,
    }
    monkeypatch.setattr(bench.naive_loop, "reference_rows", lambda *a, **k: dict(rows))
    report = {"runs": [{"images_per_s": 120.0}, {"images_per_s": 130.0}]}
    bench.add_references(report, [], 1.0, None, naive_before=104.0)
    assert (
        report["service_to_naive_ratio"] == 1.25
        and report["reference"]["naive_loop_before_stack_images_per_s"] == 104.0
    )
    report = {"runs": [{"images_per_s": 130.0}]}
    bench.add_references(report, [], 1.0, None)
    assert report["service_to_naive_ratio"] == 1.3 and "naive_loop_before_stack_images_per_s" not in report["reference"]
    assert report["service_to_own_work_ratio"] == 0.65 and report["own_work_to_naive_ratio"] == 2.0


def test_bench_bodies_name_a_colour_only_when_asked():
    import json

    from gateway.schemas import SelectRequest
    from loadtest.products import IMAGES_PER_PRODUCT, select_payloads

    files = [b"\xff\xd8 not decoded here"] * IMAGES_PER_PRODUCT
    plain, named = select_payloads(files, 1)[0], select_payloads(files, 1, "black")[0]
    assert "colour" not in json.loads(plain) and json.loads(named)["colour"] == "black"
    assert SelectRequest.model_validate_json(named).colour == "black"


def test_drive_keeps_one_connection_a_client_and_counts_what_is_not_200():
    """The closed loop's clients post the bodies in turn over keep-alive connections; a 500 is a failure, not the
    end of that client, and every 200's Server-Timing is read."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from loadtest.bench import drive

    seen = {"bodies": [], "connections": set()}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive

        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"]))
            seen["bodies"].append(body)
            seen["connections"].add(self.client_address)
            status = 500 if body == b"bad" else 200
            self.send_response(status)
            self.send_header("content-length", "2")
            self.send_header("server-timing", "total;dur=3.5, overhead;dur=1.5")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = drive(f"http://127.0.0.1:{server.server_address[1]}", [b"good", b"bad"], 1, 0.3)
    finally:
        server.shutdown()
        server.server_close()
    assert result["products"] >= 1 and result["failures"] >= 1
    assert abs(result["failures"] - result["products"]) <= 1  # one client alternates the two bodies
    assert result["overhead_p50_ms"] == 1.5
    assert seen["bodies"][:2] == [b"good", b"bad"] and len(seen["connections"]) == 1
