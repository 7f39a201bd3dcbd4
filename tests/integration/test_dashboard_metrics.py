"""Every Triton metric the Grafana dashboard queries (helm/imgsel/dashboards/imgsel.json) is one the real server
exports, except the GPU gauges, which the cpu profile's server (--allow-gpu-metrics=false, no GPU) cannot."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

DASHBOARD = Path(__file__).resolve().parents[2] / "helm" / "imgsel" / "dashboards" / "imgsel.json"
GPU_ONLY = {"nv_gpu_utilization", "nv_gpu_memory_used_bytes", "nv_gpu_memory_total_bytes"}


def test_every_triton_metric_of_the_dashboard_is_exported(stack, client):
    panels = json.loads(DASHBOARD.read_text())["panels"]
    wanted = {n for p in panels for t in p.get("targets", []) for n in re.findall(r"\bnv_[a-z_]+\b", t["expr"])}
    assert GPU_ONLY <= wanted
    client.get("/readyz")  # the models are loaded: their per-model series exist
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.triton_metrics_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    exported = set(re.findall(r"^(nv_[a-z_]+)", text, flags=re.MULTILINE))
    assert wanted - GPU_ONLY <= exported, (wanted - GPU_ONLY) - exported
