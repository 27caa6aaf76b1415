"""Prometheus rules, scrape config, adapter rules and Grafana dashboards.

Every PromQL expression is parsed by a real PromQL parser (PyPI promql-parser, run through
`uv run --with` so it stays out of the lock), and each series it selects must be one the
platform exports: the metric definitions are read from the sources (every Counter, Gauge and
Histogram in kit/, gateway/ and services/), with their label names, so a renamed metric or a
misspelled label fails here instead of silently never firing.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts import topics

from .support import ROOT

MONITORING = ROOT / "deploy" / "monitoring"
RULES = MONITORING / "prometheus" / "rules" / "shop-alerts.yaml"
DASHBOARDS = sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))
PROMQL_PARSER = "promql-parser==0.11.0"
# Labels Prometheus (or its Kubernetes discovery, or the chart's relabelling) adds to every series.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "component"}
METRIC_KINDS = {"Counter", "Gauge", "Histogram", "Summary"}


def exported_metrics() -> dict[str, set[str]]:
    """Series name -> label names, from every prometheus_client metric defined in the code."""
    sources = [*(ROOT / "kit" / "src").rglob("*.py"), *(ROOT / "gateway" / "src").rglob("*.py"),
               *(ROOT / "services").glob("*/src/**/*.py")]  # fmt: skip
    series: dict[str, set[str]] = {"up": set()}
    for path in sources:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) in METRIC_KINDS):
                continue
            if not (
                node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                continue
            name = node.args[0].value
            labels: set[str] = set()
            label_node = node.args[2] if len(node.args) > 2 else next(
                (k.value for k in node.keywords if k.arg == "labelnames"), None)  # fmt: skip
            if isinstance(label_node, (ast.List, ast.Tuple)):
                labels = {e.value for e in label_node.elts if isinstance(e, ast.Constant)}
            kind = node.func.id  # type: ignore[attr-defined]
            if kind == "Counter":
                base = name.removesuffix("_total")
                series[f"{base}_total"] = labels
            elif kind in ("Histogram", "Summary"):
                series[f"{name}_count"] = labels
                series[f"{name}_sum"] = labels
                if kind == "Histogram":
                    series[f"{name}_bucket"] = labels | {"le"}
            else:
                series[name] = labels
    return series


def analyse(expressions: list[dict[str, str]]) -> list[dict[str, Any]]:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail(
            "uv is not on PATH: it runs the PromQL parser (make install puts it there)",
            pytrace=False,
        )
    result = subprocess.run(
        [uv, "run", "--no-project", "--quiet", "--python", "3.11", "--with", PROMQL_PARSER,
         "python", str(Path(__file__).parent / "promql_check.py")],
        input=json.dumps(expressions), capture_output=True, text=True, cwd=ROOT, timeout=600, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.fail(f"the PromQL parser did not run:\n{result.stderr[-4000:]}", pytrace=False)
    return list(json.loads(result.stdout))


def check_expressions(expressions: list[dict[str, str]], series: dict[str, set[str]]) -> list[str]:
    problems = []
    for report in analyse(expressions):
        where = report["where"]
        if "error" in report:
            problems.append(f"{where}: does not parse: {report['error']}")
            continue
        if not report["selectors"]:
            problems.append(f"{where}: selects no series")
        allowed_grouping: set[str] = set(TARGET_LABELS)
        for selector in report["selectors"]:
            name = selector["name"]
            if name not in series:
                problems.append(f"{where}: {name} is not exported by any service")
                continue
            allowed_grouping |= series[name]
            unknown = set(selector["labels"]) - series[name] - TARGET_LABELS
            if unknown:
                problems.append(f"{where}: {name} has no label(s) {sorted(unknown)}")
        extra = set(report["grouping"]) - allowed_grouping
        if extra:
            problems.append(f"{where}: groups by unknown label(s) {sorted(extra)}")
    return problems


@pytest.fixture(scope="module")
def series() -> dict[str, set[str]]:
    found = exported_metrics()
    # The metrics the rules are about must be found, or the scan above is broken.
    for name in ("shop_http_requests_total", "shop_http_request_duration_seconds_bucket",
                 "shop_consumer_lag", "shop_dead_letters_total", "shop_outbox_backlog",
                 "shop_event_handler_duration_seconds_count", "shop_orders_stuck"):  # fmt: skip
        assert name in found, name
    return found


# ---------------------------------------------------------------- alert rules


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_rule_file_has_the_required_alerts(rules) -> None:
    expressions = {rule["alert"]: rule["expr"] for rule in rules}
    required = {
        "ShopStuckSagas": "shop_orders_stuck",
        "ShopDeadLettersParked": "shop_dead_letters_total",
        "ShopOutboxBacklogGrowing": "shop_outbox_backlog",
        "ShopConsumerLagHigh": "shop_consumer_lag",
        "ShopHighErrorRate": "shop_http_requests_total",
        "ShopHighP99Latency": "shop_http_request_duration_seconds_bucket",
    }
    for alert, metric in required.items():
        assert metric in expressions[alert], alert
    assert "histogram_quantile(0.99" in expressions["ShopHighP99Latency"]


def test_every_rule_is_well_formed(rules) -> None:
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "duplicate alert names"
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, (
            rule["alert"]
        )
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]


def test_every_rule_expression_parses_and_uses_exported_series(rules, series) -> None:
    expressions = [{"where": f"alert {rule['alert']}", "expr": rule["expr"]} for rule in rules]
    assert check_expressions(expressions, series) == []


def test_the_check_catches_a_wrong_metric_and_a_wrong_label(series) -> None:
    problems = check_expressions(
        [{"where": "typo", "expr": "sum(shop_consumer_lagg) > 0"},
         {"where": "label", "expr": 'sum by (tenant) (shop_outbox_backlog{region="x"})'},
         {"where": "syntax", "expr": "sum(rate(shop_dead_letters_total[5m]) > "}],
        series,
    )  # fmt: skip
    assert any(p.startswith("typo: shop_consumer_lagg is not exported") for p in problems)
    assert any("label: shop_outbox_backlog has no label(s) ['region']" in p for p in problems)
    assert any("label: groups by unknown label(s) ['tenant']" in p for p in problems)
    assert any(p.startswith("syntax: does not parse") for p in problems)


# ---------------------------------------------------------------- scrape config and adapter


def test_prometheus_config_loads_the_rules_and_scrapes_every_service() -> None:
    config = yaml.safe_load((MONITORING / "prometheus" / "prometheus.yml").read_text())
    base = MONITORING / "prometheus"
    for rule_file in config["rule_files"]:
        assert (base / rule_file).resolve() == RULES.resolve()
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"shop-kubernetes", "shop-local"}
    from shopkit.settings import SERVICE_PORTS

    local = {t for group in jobs["shop-local"]["static_configs"] for t in group["targets"]}
    assert local == {f"127.0.0.1:{port}" for port in SERVICE_PORTS.values()}
    for job in jobs.values():
        assert job["metrics_path"] == "/metrics"


def test_adapter_serves_the_metric_the_autoscalers_use(series) -> None:
    adapter = yaml.safe_load((MONITORING / "prometheus-adapter.yaml").read_text())
    (rule,) = adapter["rules"]["external"]
    assert rule["name"]["as"] == "shop_consumer_lag"
    assert "service" in series["shop_consumer_lag"]
    chart_hpa = (ROOT / "deploy" / "helm" / "shop" / "templates" / "hpa.yaml").read_text()
    assert "name: shop_consumer_lag" in chart_hpa


# ---------------------------------------------------------------- dashboards


def dashboard_expressions(board: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            # Grafana's interval variables become a literal duration for parsing.
            expr = re.sub(r"\$__(rate_interval|range|interval)", "5m", target["expr"])
            expr = expr.replace("$namespace", ".*")
            out.append(
                {"where": f"{board['uid']} / {panel['title']} / {target['refId']}", "expr": expr}
            )
    return out


def test_dashboards_exist_for_the_funnel_and_the_backbone() -> None:
    uids = {json.loads(path.read_text())["uid"] for path in DASHBOARDS}
    assert uids == {"shop-checkout-funnel", "shop-event-backbone"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_is_valid_grafana_json(path: Path) -> None:
    board = json.loads(path.read_text())
    assert board["title"]
    assert board["schemaVersion"] >= 36
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"] for v in board["templating"]["list"]}
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for target in panel["targets"]:
            for used in re.findall(r"\$(\w+)", target["expr"]):
                assert used.startswith("__") or used in variables, f"{panel['title']}: ${used}"


def test_dashboard_queries_parse_and_use_exported_series(series) -> None:
    expressions = [
        e for path in DASHBOARDS for e in dashboard_expressions(json.loads(path.read_text()))
    ]
    assert len(expressions) > 20
    assert check_expressions(expressions, series) == []


def test_funnel_counts_event_types_the_contracts_define() -> None:
    defined = set()
    for path in (ROOT / "contracts" / "src" / "contracts" / "events").glob("*.py"):
        defined |= set(re.findall(r'ce_type: ClassVar\[str\] = "([^"]+)"', path.read_text()))
    assert defined
    board = (MONITORING / "grafana" / "dashboards" / "checkout-funnel.json").read_text()
    used = set(re.findall(r'event_type=\\"([^"\\]+)\\"', board))
    assert used >= {"shop.orders.order_placed.v1", "shop.orders.order_confirmed.v1"}
    assert used - defined == set()
    assert {t.split(".")[0] for t in topics.ALL} >= {t.split(".")[1] for t in used}
