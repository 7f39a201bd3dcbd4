"""The soak's pure pieces: memory growth from samples, locust history rows aligned to sample times."""

from __future__ import annotations

import pytest

from loadtest.soak import growth, history_at, latency_intervals


def test_growth_compares_medians_of_the_first_and_last_window_after_warmup():
    # Warm-up spike at t < 60 is ignored; 100 MB for the first two minutes, 108 MB for the last two.
    samples = [(t, 500.0) for t in range(0, 60, 10)]
    samples += [(t, 100.0 if t < 300 else 108.0) for t in range(60, 600, 10)]
    result = growth(samples, warmup_s=60)
    assert result == {"baseline_mb": 100.0, "final_mb": 108.0, "growth_pct": 8.0, "window_s": 120.0}


def test_growth_window_shrinks_to_a_third_of_a_short_run_and_needs_two_samples():
    samples = [(15.0, 100.0), (25.0, 100.0), (35.0, 130.0), (45.0, 130.0)]
    assert growth(samples, warmup_s=10)["window_s"] == 10.0
    assert growth(samples, warmup_s=10)["growth_pct"] == 30.0
    assert growth([(70.0, 1.0)], warmup_s=60) is None


def row(timestamp: int, p50: str, total: int) -> dict:
    return {
        "Timestamp": str(timestamp),
        "50%": p50,
        "95%": "900",
        "Requests/s": "5.0",
        "Failures/s": "0.0",
        "Total Request Count": str(total),
        "Total Failure Count": "0",
    }


def test_latency_intervals_take_the_last_history_row_before_each_sample():
    rows = [row(1000, "N/A", 0), row(1005, "300", 10), row(1010, "400", 40), row(1020, "500", 90)]
    assert history_at(rows, 999.0) is None
    assert history_at(rows, 1012.5)["50%"] == "400"
    intervals = latency_intervals(rows, [0.5, 6.0, 21.0], started_unix=1000.0)
    assert [(i["t_s"], i["p50_ms"], i["requests"]) for i in intervals] == [(6.0, 300.0, 10), (21.0, 500.0, 90)]
    assert intervals[0]["p95_ms"] == pytest.approx(900.0)
