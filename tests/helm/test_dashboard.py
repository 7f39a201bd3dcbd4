"""The Grafana dashboard (helm/imgsel/dashboards/imgsel.json): valid, shipped by the chart when asked, and every
gateway metric it queries is one the gateway exports (Triton's names are checked against a real server in
tests/integration/test_dashboard_metrics.py)."""

from __future__ import annotations

import json
import re

import pytest
from prometheus_client import REGISTRY

import gateway.metrics  # noqa: F401  (registers the gateway's metrics)
from tests.helm.chart import CHART, HELM, VALUE_SETS, objects, render

pytestmark = pytest.mark.skipif(not HELM.is_file(), reason="helm not installed: run `make helm` (make test does)")

DASHBOARD = CHART / "dashboards" / "imgsel.json"
METRIC = re.compile(r"\b((?:imgsel|nv)_[a-z_]+)\b")


def queried_metrics() -> set[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return {name for p in panels for t in p.get("targets", []) for name in METRIC.findall(t["expr"])}


def exported_gateway_metrics() -> set[str]:
    """Every series name the gateway's metrics expose (a counter adds _total, a histogram _bucket/_sum/_count)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    return {
        family.name + suffix
        for family in REGISTRY.collect()
        if family.name.startswith("imgsel_")
        for suffix in suffixes.get(family.type, ("",))
    }


def test_the_dashboard_is_grafana_json_with_queries():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] == "imgsel"
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 8 and all(p["targets"] and p["datasource"]["uid"] == "${datasource}" for p in panels)
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_every_gateway_metric_the_dashboard_queries_is_exported():
    wanted = {name for name in queried_metrics() if name.startswith("imgsel_")}
    assert wanted, "the dashboard shows the gateway"
    assert wanted <= exported_gateway_metrics(), wanted - exported_gateway_metrics()


def test_the_chart_ships_the_dashboard_only_when_enabled():
    assert not [d for d in objects(render(VALUE_SETS["defaults"]), "ConfigMap") if "grafana" in d["metadata"]["name"]]
    docs = render(VALUE_SETS["monitoring"])
    (config_map,) = [d for d in objects(docs, "ConfigMap") if "grafana" in d["metadata"]["name"]]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["imgsel.json"]) == json.loads(DASHBOARD.read_text())
