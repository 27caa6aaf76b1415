"""The Helm chart, checked without a cluster.

`helm lint` and `helm template` run for both environments with Helm built from the Go module
proxy; every rendered manifest is validated (strictly: unknown fields fail) against the schemas
of a current Kubernetes release shipped in kubernetes-validate, and the ServiceMonitor against
the vendored prometheus-operator schema. The remaining tests read the rendered objects for the
platform's rules: probes on the health endpoints, consumers capped at the partition count,
only the gateway reachable from the ingress, services reaching only their stores.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from shopkit.settings import SERVICE_PORTS

from contracts import topics

from .settings_catalog import known_variables
from .support import (
    CHART,
    ENTRYPOINT_AND_LIBPQ,
    ENVIRONMENTS,
    KUBERNETES_VERSION,
    NAMESPACE,
    ROOT,
    fake_digest,
    template_args,
)

OLDEST_SUPPORTED = "1.31.0"


def render(helm: Path, environment: str, *extra: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        template_args(helm, environment, *extra), capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def environment(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def manifests(helm: Path, environment: str) -> list[dict[str, Any]]:
    return render(helm, environment)


def of_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def component(name: str) -> str:
    return f"shop-{name}"


# ---------------------------------------------------------------- lint, render, schemas


def test_helm_lint_passes_strictly(helm: Path, environment: str) -> None:
    result = subprocess.run(
        [
            str(helm),
            "lint",
            "--strict",
            "--kube-version",
            KUBERNETES_VERSION,
            str(CHART),
            "-f",
            str(CHART / f"values-{environment}.yaml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("version", [KUBERNETES_VERSION, OLDEST_SUPPORTED])
def test_every_rendered_manifest_matches_the_kubernetes_schemas(manifests, version: str) -> None:
    service_monitor_schema = json.loads(
        (
            Path(__file__).parent / "schemas" / "monitoring.coreos.com_v1_servicemonitor.json"
        ).read_text()
    )
    errors = []
    kinds = set()
    for manifest in manifests:
        kinds.add(manifest["kind"])
        name = f"{manifest['kind']}/{manifest['metadata']['name']}"
        if manifest["apiVersion"] == "monitoring.coreos.com/v1":
            validator = jsonschema.Draft202012Validator(service_monitor_schema)
            errors += [f"{name}: {e.message}" for e in validator.iter_errors(manifest)]
            continue
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{name}: {error.message}")
    assert errors == []
    expected = {
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
        "Job",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
    }
    assert kinds == expected


def test_the_schemas_reject_a_misspelled_field(manifests) -> None:
    # Guards the validation above against schemas that accept anything.
    deployment = json.loads(json.dumps(of_kind(manifests, "Deployment")[component("orders")]))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = deployment["spec"][
        "template"
    ]["spec"]["containers"][0].pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    monitor = json.loads(json.dumps(of_kind(manifests, "ServiceMonitor")["shop"]))
    monitor["spec"]["endpoints"][0]["scrapeInterval"] = "30s"
    schema = json.loads(
        (
            Path(__file__).parent / "schemas" / "monitoring.coreos.com_v1_servicemonitor.json"
        ).read_text()
    )
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(monitor))


# ---------------------------------------------------------------- workloads


def test_one_deployment_service_and_budget_per_component(manifests) -> None:
    names = {component(name) for name in SERVICE_PORTS}
    assert set(of_kind(manifests, "Deployment")) == names
    assert set(of_kind(manifests, "PodDisruptionBudget")) == names
    assert set(of_kind(manifests, "HorizontalPodAutoscaler")) == names
    services = of_kind(manifests, "Service")
    assert set(services) == names
    for name, port in SERVICE_PORTS.items():
        assert services[component(name)]["spec"]["ports"][0]["port"] == port


def test_every_object_lives_in_the_release_namespace(manifests) -> None:
    assert {m["metadata"].get("namespace") for m in manifests} == {NAMESPACE}


def test_pods_probe_the_health_endpoints_and_run_hardened(manifests) -> None:
    for name, deployment in of_kind(manifests, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        port = SERVICE_PORTS[name.removeprefix("shop-")]
        assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
        assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
        assert container["resources"]["requests"]
        assert container["resources"]["limits"]
        security = container["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert pod["automountServiceAccountToken"] is False


def test_images_are_pinned_by_the_digest_the_pipeline_built(manifests) -> None:
    workloads = [*of_kind(manifests, "Deployment").values(), *of_kind(manifests, "Job").values()]
    for workload in workloads:
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        image = container["image"]
        own = (
            "cli"
            if workload["kind"] == "Job"
            else workload["metadata"]["name"].removeprefix("shop-")
        )
        assert image.endswith(f"/shop-{own}@{fake_digest(own)}"), image


def test_replicas_spread_across_nodes_and_zones(manifests) -> None:
    for deployment in of_kind(manifests, "Deployment").values():
        pod = deployment["spec"]["template"]["spec"]
        own = deployment["spec"]["selector"]["matchLabels"]
        (term,) = pod["affinity"]["podAntiAffinity"][
            "preferredDuringSchedulingIgnoredDuringExecution"
        ]
        assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
        assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == own
        (spread,) = pod["topologySpreadConstraints"]
        assert spread["topologyKey"] == "topology.kubernetes.io/zone"
        assert spread["labelSelector"]["matchLabels"] == own


def test_budgets_and_services_select_their_own_pods(manifests) -> None:
    deployments = of_kind(manifests, "Deployment")
    for name, deployment in deployments.items():
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod_labels.items()
        budget = of_kind(manifests, "PodDisruptionBudget")[name]["spec"]
        assert budget["selector"]["matchLabels"] == selector
        assert budget["maxUnavailable"] >= 1
        assert of_kind(manifests, "Service")[name]["spec"]["selector"] == selector
        others = [d for n, d in deployments.items() if n != name]
        assert not any(
            selector.items() <= o["spec"]["template"]["metadata"]["labels"].items() for o in others
        )


def test_autoscaling_on_cpu_and_consumer_lag_capped_at_partitions(manifests) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for name, autoscaler in of_kind(manifests, "HorizontalPodAutoscaler").items():
        spec = autoscaler["spec"]
        short = name.removeprefix("shop-")
        assert spec["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        metrics = {m["type"]: m for m in spec["metrics"]}
        assert metrics["Resource"]["resource"]["name"] == "cpu"
        assert 1 <= spec["minReplicas"] <= spec["maxReplicas"]
        if values["services"][short]["consumer"]:
            assert spec["maxReplicas"] <= topics.PARTITIONS, (
                f"{name} scales past the partition count"
            )
            external = metrics["External"]["external"]
            assert external["metric"]["name"] == "shop_consumer_lag"
            assert external["metric"]["selector"]["matchLabels"] == {"service": short}
            assert (
                autoscaler["metadata"]["annotations"]["shop.dev/consumer-lag-metric"]
                == "shop_consumer_lag"
            )
        else:
            assert "External" not in metrics


def test_chart_refuses_more_consumers_than_partitions(helm: Path) -> None:
    result = subprocess.run(
        template_args(helm, "production", "--set", "services.orders.autoscaling.maxReplicas=7"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "exceeds the 6 Kafka partitions" in result.stderr


def test_chart_refuses_to_render_without_the_kafka_brokers(helm: Path) -> None:
    result = subprocess.run(
        template_args(helm, "staging", "--set", "config.SHOP_KAFKA_BOOTSTRAP="),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "config.SHOP_KAFKA_BOOTSTRAP must be set" in result.stderr


def test_migrations_run_before_install_and_upgrade(manifests) -> None:
    (job,) = of_kind(manifests, "Job").values()
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["shop", "db", "upgrade", "--all"]
    assert "/shop-cli@" in container["image"]
    secrets = {ref["secretRef"]["name"] for ref in container["envFrom"]}
    assert secrets == {f"shop-{name}" for name in SERVICE_PORTS}
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_containers_get_only_settings_the_services_read(manifests) -> None:
    (config,) = of_kind(manifests, "ConfigMap").values()
    shared = set(config["data"])
    for name in SERVICE_PORTS:
        known = known_variables(name)
        assert shared - known == set(), f"{name} does not read {shared - known}"
        container = of_kind(manifests, "Deployment")[component(name)]["spec"]["template"]["spec"][
            "containers"
        ][0]
        assert {e["name"] for e in container["env"]} - ENTRYPOINT_AND_LIBPQ <= known
    assert config["data"]["SHOP_JWKS_URL"] == "http://shop-auth:8001/.well-known/jwks.json"


def _env(manifests: list[dict[str, Any]], name: str) -> dict[str, str]:
    container = of_kind(manifests, "Deployment")[component(name)]["spec"]["template"]["spec"][
        "containers"
    ][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_in_cluster_urls_name_the_components_services(manifests) -> None:
    """The local defaults (127.0.0.1) mean nothing in a pod: every URL a component calls
    another one by is rendered from the Service names and ports."""
    services = of_kind(manifests, "Service")
    upstreams = json.loads(_env(manifests, "gateway")["GATEWAY_UPSTREAMS"])
    assert set(upstreams) == set(SERVICE_PORTS) - {"gateway"}
    sources = json.loads(_env(manifests, "users")["USERS_EXPORT_SOURCES"])
    assert set(sources) == {"auth", "catalog", "orders", "payments", "shipping", "notifications"}
    for name, url in [*upstreams.items(), *sources.items()]:
        port = services[component(name)]["spec"]["ports"][0]["port"]
        assert url.startswith(f"http://{component(name)}:{port}"), (name, url)


# ---------------------------------------------------------------- network


def _ingress_sources(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [peer for rule in policy["spec"].get("ingress", []) for peer in rule.get("from", [])]


def test_only_the_gateway_is_reachable_from_the_ingress(manifests) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    controller = {"kubernetes.io/metadata.name": values["ingress"]["controllerNamespace"]}
    policies = of_kind(manifests, "NetworkPolicy")
    default_deny = policies["shop-default-deny"]["spec"]
    assert default_deny["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in default_deny
    assert "egress" not in default_deny
    for name in SERVICE_PORTS:
        sources = _ingress_sources(policies[component(name)])
        from_controller = [
            p for p in sources if p.get("namespaceSelector", {}).get("matchLabels") == controller
        ]
        assert bool(from_controller) == (name == "gateway"), name
        for peer in sources:
            assert "ipBlock" not in peer, f"{name} admits an address range"
    (ingress,) = of_kind(manifests, "Ingress").values()
    backends = {
        p["backend"]["service"]["name"]
        for r in ingress["spec"]["rules"]
        for p in r["http"]["paths"]
    }
    assert backends == {"shop-gateway"}
    assert ingress["spec"]["tls"][0]["hosts"] == [ingress["spec"]["rules"][0]["host"]]
    assert ingress["spec"]["tls"][0]["secretName"]


def test_services_reach_only_their_own_stores_and_kafka(manifests) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    ports = values["networkPolicy"]["ports"]
    for name in SERVICE_PORTS:
        policy = of_kind(manifests, "NetworkPolicy")[component(name)]["spec"]
        declared = values["services"][name]
        store_ports = {
            port["port"]
            for rule in policy["egress"]
            if any("ipBlock" in peer and "except" not in peer["ipBlock"] for peer in rule["to"])
            for port in rule["ports"]
        }
        assert store_ports == {ports[store] for store in declared["stores"]}, name
        if name != "gateway":
            assert ports["kafka"] in store_ports, f"{name} cannot reach Kafka"
        peers = {
            peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            for rule in policy["egress"]
            for peer in rule["to"]
            if "podSelector" in peer and "namespaceSelector" not in peer
        }
        assert peers == set(declared.get("calls", [])), name
    catalog = {
        p["port"]
        for r in of_kind(manifests, "NetworkPolicy")["shop-catalog"]["spec"]["egress"]
        for p in r["ports"]
    }
    assert ports["postgres"] not in catalog


def test_prometheus_scrapes_every_component(manifests) -> None:
    (monitor,) = of_kind(manifests, "ServiceMonitor").values()
    selector = monitor["spec"]["selector"]["matchLabels"]
    for service in of_kind(manifests, "Service").values():
        assert selector.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] == "http"


def test_values_cover_exactly_the_platform_components() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert {name: svc["port"] for name, svc in values["services"].items()} == SERVICE_PORTS
    assert values["global"]["kafkaPartitions"] == topics.PARTITIONS
    for environment in ENVIRONMENTS:
        overrides = yaml.safe_load((CHART / f"values-{environment}.yaml").read_text())
        assert overrides["global"]["environment"] == environment
        assert set(overrides.get("services", {})) <= set(SERVICE_PORTS)
    assert (ROOT / "deploy" / "helm" / "shop" / "Chart.yaml").exists()


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; Helm's parser does the same."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    keys = [loader.construct_object(key) for key, _ in node.value]
    duplicates = {k for k in keys if keys.count(k) > 1}
    assert not duplicates, f"duplicate keys {duplicates} at line {node.start_mark.line + 1}"
    return dict(loader.construct_pairs(node))


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


@pytest.mark.parametrize("name", ["values.yaml", *(f"values-{e}.yaml" for e in ENVIRONMENTS)])
def test_values_files_have_no_duplicate_keys(name: str) -> None:
    yaml.load((CHART / name).read_text(), Loader=_UniqueKeyLoader)
    with pytest.raises(AssertionError, match="duplicate keys"):
        yaml.load("a:\n  b: 1\na:\n  c: 2\n", Loader=_UniqueKeyLoader)


def test_the_ingress_exposes_only_what_clients_call(manifests) -> None:
    (ingress,) = of_kind(manifests, "Ingress").values()
    (rule,) = ingress["spec"]["rules"]
    paths = {(p["path"], p["pathType"]) for p in rule["http"]["paths"]}
    # The gateway's /metrics and its fan-out /health (probes into every service) were public
    # through a "/" prefix.
    assert paths == {
        ("/api", "Prefix"),
        ("/.well-known/jwks.json", "Exact"),
        ("/openapi.json", "Exact"),
        ("/docs", "Exact"),
    }
    for path, kind in paths:
        for internal in ("/metrics", "/health", "/health/ready"):
            assert not (kind == "Prefix" and internal.startswith(path)), (path, internal)
