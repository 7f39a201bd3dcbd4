"""loadtest.fault_run: the figures of a fault run from its per-request log."""

from __future__ import annotations

from loadtest.fault_run import HUNG_MARGIN_S, markdown, summarize

T0 = 1_000_000.0


def record(start: float, ms: float, status: int, retry_after: str | None = "5", error: str | None = None) -> dict:
    return {"start": T0 + start, "ms": ms, "name": "/v1/select (8 images)", "status": status,
            "retry_after": retry_after if status == 503 else None, "error": error}  # fmt: skip


def test_summary_of_a_clean_fault_run():
    records = [
        record(0.0, 800, 200),
        record(1.0, 900, 200),
        record(20.5, 3, 503),
        record(21.0, 2, 503),
        record(30.2, 1200, 200),  # ends at 31.4: Triton was ready at 30.0
        record(31.0, 700, 200),
    ]
    summary = summarize(records, fault_at=T0 + 20.0, ready_at=T0 + 30.0, timeout_s=30.0)
    assert summary["requests"] == 6
    assert (summary["ok_200"], summary["unavailable_503"], summary["non_503_errors"]) == (4, 2, 0)
    assert summary["unavailable_without_retry_after"] == 0
    assert summary["longest_request_s"] == 1.2
    assert summary["longest_503_s"] == 0.003
    assert summary["hung_requests"] == 0
    assert (summary["fault_at_s"], summary["ready_again_at_s"]) == (20.0, 30.0)
    assert summary["ready_to_first_200_s"] == 1.4


def test_errors_hung_requests_and_missing_retry_after_are_counted():
    hung_ms = (30.0 + HUNG_MARGIN_S) * 1000
    records = [
        record(0.0, 500, 200),
        record(20.1, 10, 500, error="CatchResponseError: 500"),
        record(20.2, hung_ms, 0, error="ReadTimeout: timed out"),
        record(20.3, 5, 503, retry_after=None),
    ]
    summary = summarize(records, fault_at=T0 + 20.0, ready_at=None, timeout_s=30.0)
    assert summary["non_503_errors"] == 2
    assert summary["errors_by_kind"] == {"500 CatchResponseError: 500": 1, "0 ReadTimeout: timed out": 1}
    assert summary["hung_requests"] == 1
    assert summary["unavailable_without_retry_after"] == 1
    assert summary["ready_again_at_s"] is None and summary["ready_to_first_200_s"] is None


def test_a_200_that_ended_before_the_restart_is_not_the_first_after_it():
    records = [record(19.0, 1500, 200), record(40.0, 500, 200)]  # the first ended at 20.5, mid-outage
    summary = summarize(records, fault_at=T0 + 20.0, ready_at=T0 + 39.0, timeout_s=30.0)
    assert summary["ready_to_first_200_s"] == 1.5


def test_no_records():
    summary = summarize([], fault_at=T0, ready_at=None, timeout_s=30.0)
    assert summary["requests"] == 0 and summary["longest_request_s"] is None


def test_markdown_has_one_column_per_run():
    run = summarize([record(0.0, 500, 200)], fault_at=T0, ready_at=T0, timeout_s=30.0)
    text = markdown([run | {"injected": {"killed": "tritonserver"}, "old_stubs_gone": True}])
    assert text.splitlines()[0] == "| | tritonserver |"
    assert "| non-503 errors (goal 0) | 0 |" in text
