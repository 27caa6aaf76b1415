"""compose.yaml and the shared Dockerfile, checked without a Docker engine.

`docker compose config` cannot run here, so the file is validated against the Compose
Specification's JSON Schema (vendored, see schemas/SOURCES.md) and then against the platform's
own rules: every long-running container has a health check, the ports match the platform's
table, services wait for healthy dependencies and for the migrations job, and every image is
built from the one Dockerfile with a SERVICE that is a workspace package.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from shopkit.migrations import POSTGRES_SERVICES
from shopkit.settings import SERVICE_PORTS

from contracts import topics

from . import dockerignore
from .settings_catalog import known_variables, settings_class
from .support import ROOT, run, uv

SERVICES = tuple(SERVICE_PORTS)  # gateway + the eight services
INFRA_PORTS = {
    "postgres": [5432],
    "redis": [6379],
    "kafka": [9092],
    "mongo": [27017],
    "mailpit": [1025, 8025],
    "localstripe": [8420],
}
ONE_SHOT = {"migrations"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def compose_schema() -> jsonschema.protocols.Validator:
    schema = json.loads((Path(__file__).parent / "schemas" / "compose-spec.json").read_text())
    # The file declares draft 2019-09 (with a legacy `http://...#` URI the library does not map).
    jsonschema.Draft201909Validator.check_schema(schema)
    return jsonschema.Draft201909Validator(schema)


def test_compose_file_matches_the_compose_specification(compose, compose_schema) -> None:
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in compose_schema.iter_errors(compose)
    ]
    assert errors == []


def test_the_schema_rejects_what_compose_would_reject(compose, compose_schema) -> None:
    # Guards the check above against a schema that accepts anything.
    broken = copy.deepcopy(compose)
    broken["services"]["orders"]["helthcheck"] = broken["services"]["orders"].pop("healthcheck")
    broken["services"]["auth"]["depends_on"]["postgres"]["condition"] = "service_ready"
    messages = [e.message for e in compose_schema.iter_errors(broken)]
    assert any("helthcheck" in m for m in messages)
    assert any("service_ready" in m for m in messages)


def test_topology_is_the_local_stack(compose) -> None:
    services = set(compose["services"])
    assert services == set(SERVICES) | set(INFRA_PORTS) | ONE_SHOT


def test_every_long_running_container_has_a_healthcheck(compose) -> None:
    for name, service in compose["services"].items():
        if name in ONE_SHOT:
            assert service["restart"] == "no", name
            continue
        check = service.get("healthcheck")
        assert check, f"{name} has no health check"
        assert check.get("test"), name
        assert not check.get("disable"), name


def _published(service: dict[str, Any]) -> dict[int, str]:
    out: dict[int, str] = {}
    for entry in service.get("ports", []):
        host_ip, host_port, container_port = str(entry).split(":")
        assert host_port == container_port, entry
        out[int(container_port)] = host_ip
    return out


def test_ports_match_the_platform_table_on_loopback_only(compose) -> None:
    for name, port in SERVICE_PORTS.items():
        assert _published(compose["services"][name]) == {port: "127.0.0.1"}, name
    for name, ports in INFRA_PORTS.items():
        assert _published(compose["services"][name]) == dict.fromkeys(ports, "127.0.0.1"), name


def _depends(service: dict[str, Any]) -> dict[str, str]:
    return {dep: spec["condition"] for dep, spec in service.get("depends_on", {}).items()}


def test_services_wait_for_migrations_and_healthy_dependencies(compose) -> None:
    all_services = compose["services"]
    for name in SERVICES:
        depends = _depends(all_services[name])
        assert depends, f"{name} starts without waiting for anything"
        for dependency, condition in depends.items():
            expected = (
                "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            )
            assert condition == expected, f"{name} -> {dependency}: {condition}"
        if name != "gateway":
            assert "migrations" in depends, name
            assert "kafka" in depends, name
        # Every component checks logged-out tokens in Redis (shopkit.security).
        assert "redis" in depends, name
    store = dict.fromkeys(POSTGRES_SERVICES, "postgres") | {"catalog": "mongo"}
    for name, dependency in store.items():
        assert dependency in _depends(all_services[name]), f"{name} does not wait for its store"
    assert set(_depends(all_services["gateway"])) >= set(SERVICES) - {"gateway"}
    migrations = _depends(all_services["migrations"])
    assert migrations == {
        "postgres": "service_healthy",
        "mongo": "service_healthy",
        "kafka": "service_healthy",
    }


def test_dependency_graph_has_no_cycle(compose) -> None:
    graph = {name: set(_depends(service)) for name, service in compose["services"].items()}
    done: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, f"cycle: {' -> '.join((*path, node))}"
        if node in done:
            return
        for dependency in graph[node]:
            assert dependency in graph, f"{node} depends on unknown {dependency}"
            visit(dependency, (*path, node))
        done.add(node)

    for name in graph:
        visit(name, ())


def test_every_shop_image_comes_from_the_shared_dockerfile(compose) -> None:
    lock = (ROOT / "uv.lock").read_text()
    for name, service in compose["services"].items():
        if name in INFRA_PORTS and name != "localstripe":
            assert ":" in service["image"], f"{name}: pin the image version"
            assert not service["image"].endswith(":latest"), name
            assert "build" not in service, name
            continue
        if name == "localstripe":
            assert service["build"]["dockerfile"] == "deploy/compose/localstripe/Dockerfile"
            continue
        build = service["build"]
        assert build["context"] == "."
        assert build.get("dockerfile", "Dockerfile") == "Dockerfile"
        package = f"shop-{build['args']['SERVICE']}"
        assert f'name = "{package}"' in lock, f"{name}: {package} is not a workspace package"
        expected = "cli" if name == "migrations" else name
        assert build["args"]["SERVICE"] == expected


def test_migrations_job_migrates_every_store_and_creates_the_topics(compose) -> None:
    job = compose["services"]["migrations"]
    script = " ".join(job["command"])
    assert "shop db upgrade --all" in script
    assert "shopkit.kafka_admin ensure-topics" in script
    environment = job["environment"]
    for name in POSTGRES_SERVICES:
        assert environment[f"{name.upper()}_DATABASE_URL"].endswith(f"@postgres:5432/{name}")
    assert environment["CATALOG_MONGO_URL"].startswith("mongodb://mongo:27017")


def test_postgres_init_creates_one_database_per_service() -> None:
    script = (ROOT / "deploy" / "compose" / "postgres" / "init-databases.sh").read_text()
    listed = set(re.search(r"for db in ([a-z ]+); do", script).group(1).split())  # type: ignore[union-attr]
    assert set(POSTGRES_SERVICES) <= listed


def test_kafka_runs_kraft_with_the_topics_partition_count(compose) -> None:
    environment = compose["services"]["kafka"]["environment"]
    assert environment["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert int(environment["KAFKA_NUM_PARTITIONS"]) == topics.PARTITIONS
    assert environment["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    advertised = environment["KAFKA_ADVERTISED_LISTENERS"]
    assert "INTERNAL://kafka:19092" in advertised
    assert "EXTERNAL://127.0.0.1:9092" in advertised


def test_services_get_settings_they_actually_read(compose) -> None:
    """Every variable a shop container gets names a field of that component's settings."""
    for name in (*SERVICES, "migrations"):
        known = known_variables(name)
        unknown = sorted(set(compose["services"][name]["environment"]) - known)
        assert unknown == [], f"{name} gets variables no settings field reads: {unknown}"


# Settings whose loopback default is right inside a container: not an address it connects to.
NOT_A_PEER = {
    "host",  # the bind address; the image's entry point binds 0.0.0.0 (deploy/docker/entrypoint.sh)
    "jwt_issuer",  # compared with a token's `iss`, never connected to
    "storefront_url",  # a link in emails, opened by a browser on the host
    "smtp_local_hostname",  # the name this service gives in SMTP HELO
    "trusted_proxies",  # checked on its own below
}
_LOOPBACK = re.compile(r"(?<![\w.])(127(?:\.\d{1,3}){3}|localhost|::1|0\.0\.0\.0)(?![\w.])")
_INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def _container_environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as its container sees it (`${VAR:-default}` at its default)."""
    return {
        key: _INTERPOLATION.sub(lambda m: m.group(2) or "", str(value))
        for key, value in service.get("environment", {}).items()
    }


def _settings_in_container(
    name: str, compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> Any:
    prefixes = ("SHOP_", *(f"{component.upper()}_" for component in SERVICE_PORTS))
    with monkeypatch.context() as patch:
        for key in list(os.environ):
            if key.upper().startswith(prefixes):
                patch.delenv(key)
        for key, value in _container_environment(compose["services"][name]).items():
            patch.setenv(key, value)
        return settings_class(name)()


def test_no_container_setting_points_at_its_own_loopback(compose, monkeypatch) -> None:
    """Inside a container 127.0.0.1 is the container itself: every address a service connects
    to must come from compose.yaml (the settings' defaults are the local stack's loopback)."""
    found: dict[str, dict[str, str]] = {}
    for name in SERVICES:
        settings = _settings_in_container(name, compose, monkeypatch)
        unused = set() if name in POSTGRES_SERVICES else {"database_url"}  # no tables, no engine
        if settings.otel_exporter == "none":
            unused.add("otel_endpoint")
        wrong = {
            field: str(value)
            for field, value in settings.model_dump().items()
            if field not in NOT_A_PEER | unused and _LOOPBACK.search(str(value))
        }
        if wrong:
            found[name] = wrong
    assert found == {}, f"settings that reach the container's own loopback: {found}"


def test_the_loopback_check_sees_a_missing_address(compose, monkeypatch) -> None:
    # Guards the check above: without its compose variable, payments talks to 127.0.0.1.
    broken = copy.deepcopy(compose)
    del broken["services"]["payments"]["environment"]["PAYMENTS_STRIPE_API_BASE"]
    settings = _settings_in_container("payments", broken, monkeypatch)
    assert _LOOPBACK.search(settings.stripe_api_base)


def test_services_behind_the_gateway_believe_its_forwarded_client_ip(compose, monkeypatch) -> None:
    """Auth (login lockout) and orders (the IP handed to the payments' risk rules) see the
    gateway container as their peer: they must trust its X-Forwarded-For, and only its."""
    gateway = compose["services"]["gateway"]
    address = ipaddress.ip_address(gateway["networks"]["default"]["ipv4_address"])
    subnets = [
        ipaddress.ip_network(entry["subnet"])
        for entry in compose["networks"]["default"]["ipam"]["config"]
    ]
    assert any(address in subnet for subnet in subnets), f"{address} is outside {subnets}"
    readers = []
    for name in SERVICES:
        if name == "gateway":
            continue  # its trusted proxies are load balancers in front of it: none here
        settings = _settings_in_container(name, compose, monkeypatch)
        if not hasattr(settings, "trusted_proxies"):
            continue
        readers.append(name)
        networks = [ipaddress.ip_network(cidr) for cidr in settings.trusted_proxies]
        assert any(address in network for network in networks), (
            f"{name} does not trust the gateway ({address}): {settings.trusted_proxies}"
        )
        for network in networks:
            # A host client reaching a published port arrives from the bridge's own address.
            assert network.num_addresses == 1, f"{name} trusts all of {network}"
    assert set(readers) >= {"auth", "orders"}


def test_gateway_upstreams_reach_every_service_by_name(compose) -> None:
    upstreams = json.loads(compose["services"]["gateway"]["environment"]["GATEWAY_UPSTREAMS"])
    assert upstreams == {
        name: f"http://{name}:{port}" for name, port in SERVICE_PORTS.items() if name != "gateway"
    }


# ---------------------------------------------------------------- Dockerfile and build context


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_dockerfile_is_multi_stage_parameterised_and_runs_as_non_root() -> None:
    text = _dockerfile()
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, flags=re.MULTILINE)
    assert stages == ["manifests", "build", "runtime"]
    assert re.search(r"^ARG SERVICE$", text, flags=re.MULTILINE)
    assert 'uv sync --frozen --no-dev --no-install-workspace --package "shop-${SERVICE}"' in text
    assert 'uv sync --frozen --no-dev --package "shop-${SERVICE}"' in text
    runtime = text.split("AS runtime", 1)[1]
    user = re.findall(r"^USER\s+(\S+)", runtime, flags=re.MULTILINE)
    assert user
    assert not user[-1].startswith(("0", "root"))
    assert "pip install" not in runtime, "the runtime stage must not carry build tools"


@pytest.mark.parametrize("package", ["shop-cli", *(f"shop-{name}" for name in SERVICES)])
def test_locked_dependencies_resolve_for_each_image(package: str) -> None:
    # The same selection `uv sync --frozen --package` makes in the build stage, from the lock only.
    result = run(
        [
            uv(),
            "export",
            "--frozen",
            "--no-dev",
            "--package",
            package,
            "--no-emit-workspace",
            "--no-hashes",
            "--quiet",
        ]
    )
    assert "fastapi==" in result.stdout or package == "shop-contracts"


def _context_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [path for path in listed if (ROOT / path).is_file()]


def test_build_context_has_the_sources_and_no_tests_or_state() -> None:
    rules = dockerignore.load(ROOT / ".dockerignore")
    sent = [path for path in _context_files() if dockerignore.included(path, rules)]
    assert "uv.lock" in sent
    assert "pyproject.toml" in sent
    for name in SERVICES:
        member = "gateway" if name == "gateway" else f"services/{name}"
        assert f"{member}/pyproject.toml" in sent, name
        assert any(p.startswith(f"{member}/src/") and p.endswith("app.py") for p in sent), name
    for name in POSTGRES_SERVICES:
        assert any(p.startswith(f"services/{name}/migrations/") for p in sent), name
    leaked = [
        p for p in sent if "/tests/" in f"/{p}" or p.startswith((".state/", ".venv/", ".git/"))
    ]
    assert leaked == []


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "deploy/compose/localstripe/Dockerfile"])
def test_every_copied_path_is_in_the_build_context(dockerfile: str) -> None:
    rules = dockerignore.load(ROOT / ".dockerignore")
    files = _context_files()
    for line in (ROOT / dockerfile).read_text().splitlines():
        match = re.match(r"^COPY\s+(?!--from)(?:--\S+\s+)*(.+)\s+(\S+)$", line)
        if not match:
            continue
        for source in match.group(1).split():
            if source == ".":
                continue
            prefix = source.rstrip("/")
            present = [f for f in files if f == prefix or f.startswith(f"{prefix}/")]
            assert present, f"{dockerfile}: COPY {source} names nothing in the repository"
            assert any(dockerignore.included(f, rules) for f in present), (
                f"{dockerfile}: COPY {source} is excluded by .dockerignore"
            )


def test_entrypoint_port_table_is_the_platform_table() -> None:
    script = (ROOT / "deploy" / "docker" / "entrypoint.sh").read_text()
    table = {
        name: int(port)
        for name, port in re.findall(r"^\s+(\w+)\) default_port=(\d+)", script, flags=re.M)
    }
    assert table == SERVICE_PORTS


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_entrypoint_serves_a_service_and_answers_its_own_healthcheck() -> None:
    """The image's entry point, run for real (uvicorn from the workspace) outside a container."""
    port = _free_port()
    venv_bin = ROOT / ".venv" / "bin"
    environment = {
        **os.environ,
        "PATH": f"{venv_bin}:{os.environ['PATH']}",
        "SHOP_SERVICE": "gateway",
        "PORT": str(port),
        "SHOP_HOST": "127.0.0.1",
    }
    entrypoint = str(ROOT / "deploy" / "docker" / "entrypoint.sh")
    server = subprocess.Popen(
        [entrypoint, "serve"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (
                f"entrypoint exited: {server.stdout.read() if server.stdout else ''}"
            )
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/health/live", timeout=2
                ) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the gateway did not answer /health/live"
            time.sleep(0.3)
        check = subprocess.run([entrypoint, "healthcheck", "live"], env=environment, check=False)
        assert check.returncode == 0
        wrong = subprocess.run(
            [entrypoint, "healthcheck", "nonsense"],
            env=environment,
            check=False,
            capture_output=True,
        )
        assert wrong.returncode == 64
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    # Nothing listens any more: the same health check now fails.
    after = subprocess.run(
        [entrypoint, "healthcheck", "live"], env=environment, check=False, capture_output=True
    )
    assert after.returncode != 0


def test_entrypoint_refuses_an_unknown_service() -> None:
    result = subprocess.run(
        [str(ROOT / "deploy" / "docker" / "entrypoint.sh"), "serve"],
        env={**os.environ, "SHOP_SERVICE": "billing"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 64
    assert "unknown SHOP_SERVICE" in result.stderr
