"""The pure parts of the profiling and sweep tools: py-spy's collapsed stacks read into own-sample shares, /proc CPU
time of this process, every sweep variant a valid set of serving knobs."""

from __future__ import annotations

import dataclasses
import os
import threading
import time

import pytest

from build_engines.repository import CpuServing
from loadtest.profile_stack import children, cpu_seconds, project_frames, thread_cpu_seconds, top_frames
from loadtest.sweep_serving import BASE, VARIANTS, markdown


def test_top_frames_counts_the_leaf_of_each_stack():
    raw = "main;run;resize 30\nmain;run;hash 10\nmain;idle 60\nnot a sample line\n"
    assert top_frames(raw, 2) == [("idle", 0.6), ("resize", 0.3)]
    assert top_frames("", 3) == []


def test_project_frames_counts_every_sample_under_each_project_function_once():
    raw = (
        "run (asyncio/runners.py:118);curate (gateway/services/curation.py:70);select (gateway/decisions/s.py:9);"
        "var (numpy/core/_methods.py:152) 30\n"
        "run (asyncio/runners.py:118);curate (gateway/services/curation.py:72);curate (gateway/services/curation.py:80)"
        " 20\n"
        "run (asyncio/runners.py:118) 50\n"
        "_analyse (model.py:88);run (onnxruntime/capi/onnxruntime_inference_collection.py:220) 100\n"
    )
    assert project_frames(raw, 5) == [
        ("_analyse (model.py)", 0.5),
        ("curate (gateway/services/curation.py)", 0.25),  # two lines of one function, and a recursion: once a sample
        ("select (gateway/decisions/s.py)", 0.15),
    ]
    assert project_frames("", 3) == []


def test_cpu_seconds_of_this_process_grows_with_work_and_is_zero_for_no_process():
    before = cpu_seconds(os.getpid())
    # Busy until /proc shows the work (its tick-sampled accounting lags process_time on a loaded machine).
    give_up = time.monotonic() + 30
    while cpu_seconds(os.getpid()) < before + 0.04 and time.monotonic() < give_up:
        sum(range(10_000))
    assert cpu_seconds(os.getpid()) >= before + 0.04
    assert cpu_seconds(2**22 + 12345) == 0.0  # above the kernel's pid_max default: never a live process
    assert os.getpid() in children(os.getppid())


def test_thread_cpu_seconds_sums_this_process_by_thread_name():
    by_name = thread_cpu_seconds(os.getpid())
    main_name = open(f"/proc/{os.getpid()}/task/{threading.get_native_id()}/comm").read().strip()
    assert by_name[main_name] > 0  # this thread imported pytest and the project: it has run
    assert sum(by_name.values()) <= cpu_seconds(os.getpid()) + 0.05  # the threads' parts of the process's total
    assert thread_cpu_seconds(2**22 + 12345) == {}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_sweep_variant_is_a_set_of_serving_knobs(name):
    knobs = dataclasses.replace(BASE, **VARIANTS[name])
    assert isinstance(knobs, CpuServing)
    assert name.startswith("chosen (defaults)") or knobs != BASE


def test_the_sweep_table_has_a_row_per_variant_and_level():
    runs = [{"concurrency": c, "images_per_s": 50.0, "p50_ms": 1.0, "p99_ms": 2.0, "failures": 0} for c in (1, 8)]
    table = markdown([{"name": "chosen (defaults)", "runs": runs}])
    assert table.count("| chosen (defaults) |") == 2 and "| 8 | 50.0 |" in table
    memory = {"pss": {"total": 812.5}, "rss": {"total": 1290.0}}
    table = markdown([{"name": "chosen (defaults)", "runs": runs, "memory_mb": memory}])
    assert table.splitlines()[-1].endswith("| 0 | 812.5 / 1290.0 |")
