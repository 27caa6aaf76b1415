"""infra/terraform, checked without an AWS account.

Every file parses (python-hcl2); variables and outputs are documented; no literal secret sits in
the code; and the values that other parts of the platform depend on agree: the Kafka topics are
contracts.topics, the partition count is the contracts' one, and the data subnets carved by the
VPC module are the CIDRs the Helm chart's NetworkPolicies allow store traffic to.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

from contracts import topics

from .support import CHART, ENVIRONMENTS, ROOT

TERRAFORM = ROOT / "infra" / "terraform"
FILES = sorted(TERRAFORM.rglob("*.tf")) + sorted(TERRAFORM.rglob("*.tfvars"))
MODULES = sorted(p for p in (TERRAFORM / "modules").iterdir() if p.is_dir())


def _plain(node: Any) -> Any:
    """python-hcl2 8 keeps string quotes and block markers; strip them for reading values."""
    if isinstance(node, dict):
        return {_plain(k): _plain(v) for k, v in node.items() if k != "__is_block__"}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str) and len(node) >= 2 and node[0] == node[-1] == '"':
        return node[1:-1]
    return node


def parse(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        document: dict[str, Any] = _plain(hcl2.load(handle))
    return document


def test_there_is_terraform_to_check() -> None:
    names = {p.name for p in MODULES}
    assert names >= {
        "vpc",
        "eks",
        "rds",
        "elasticache",
        "msk",
        "documentdb",
        "images",
        "secrets",
        "irsa",
    }
    for environment in ENVIRONMENTS:
        assert (TERRAFORM / "environments" / environment / "main.tf").is_file()


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_file_parses(path: Path) -> None:
    document = parse(path)
    assert document, f"{path} is empty"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_variables_and_outputs_are_documented(path: Path) -> None:
    document = parse(path)
    for block in document.get("variable", []):
        for name, body in block.items():
            assert body.get("description"), f"{path.name}: variable {name} has no description"
            assert "type" in body, f"{path.name}: variable {name} has no type"
    for block in document.get("output", []):
        for name, body in block.items():
            assert body.get("description"), f"{path.name}: output {name} has no description"


SECRET_ASSIGNMENT = re.compile(
    r'^\s*"?(\w*(?:password|secret|token|private_key|access_key))"?\s*=\s*"([^"]*)"',
    re.IGNORECASE | re.MULTILINE,
)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_no_secret_is_written_in_the_code(path: Path) -> None:
    text = path.read_text()
    for match in SECRET_ASSIGNMENT.finditer(text):
        name, value = match.groups()
        # References and interpolations are fine; a literal value is a secret in git.
        assert value == "" or value.startswith("${"), f"{path.name}: {name} holds a literal"
    assert not re.search(r"AKIA[0-9A-Z]{16}", text), f"{path.name}: an AWS access key id"
    assert "BEGIN RSA PRIVATE KEY" not in text
    assert "BEGIN PRIVATE KEY" not in text


def test_the_secret_pattern_catches_a_literal() -> None:
    assert SECRET_ASSIGNMENT.search('  master_password = "hunter2hunter2"\n')
    assert not SECRET_ASSIGNMENT.search("  master_password = random_password.master.result\n")


def test_every_module_has_its_three_files() -> None:
    for module in MODULES:
        present = {p.name for p in module.glob("*.tf")}
        assert {"main.tf", "variables.tf", "outputs.tf"} <= present, module.name


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_environment_composes_the_platform_with_the_contracts_topics(environment: str) -> None:
    directory = TERRAFORM / "environments" / environment
    main = parse(directory / "main.tf")
    (platform,) = [block["platform"] for block in main["module"] if "platform" in block]
    assert platform["source"] == "../../modules/platform"
    assert platform["environment"] == environment
    tfvars = parse(directory / "terraform.tfvars")
    assert tfvars["kafka_topics"] == list(topics.ALL)
    versions = parse(directory / "versions.tf")
    backend = versions["terraform"][0]["backend"][0]["s3"]
    assert backend["encrypt"] is True
    assert backend["use_lockfile"] is True


def test_partition_count_is_the_contracts_one() -> None:
    for path in (
        TERRAFORM / "modules" / "msk" / "variables.tf",
        TERRAFORM / "modules" / "platform" / "variables.tf",
    ):
        variables = {
            name: body for block in parse(path)["variable"] for name, body in block.items()
        }
        partitions = variables.get("partitions") or variables["kafka_partitions"]
        assert partitions["default"] == topics.PARTITIONS


def test_msk_refuses_auto_created_topics_and_plaintext() -> None:
    main = parse(TERRAFORM / "modules" / "msk" / "main.tf")
    resources = {
        (kind, name): body
        for block in main["resource"]
        for kind, named in block.items()
        for name, body in named.items()
    }
    properties = resources[("aws_msk_configuration", "this")]["server_properties"]
    assert "auto.create.topics.enable=false" in properties
    assert "min.insync.replicas=2" in properties
    cluster = resources[("aws_msk_cluster", "this")]
    transit = cluster["encryption_info"][0]["encryption_in_transit"][0]
    assert transit == {"client_broker": "TLS", "in_cluster": True}
    assert cluster["client_authentication"][0]["unauthenticated"] is False


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_chart_store_cidrs_are_the_vpc_data_subnets(environment: str) -> None:
    tfvars = parse(TERRAFORM / "environments" / environment / "terraform.tfvars")
    vpc = ipaddress.ip_network(tfvars["vpc_cidr"])
    vpc_main = (TERRAFORM / "modules" / "vpc" / "main.tf").read_text()
    # The VPC module carves the data tier as cidrsubnet(var.cidr, 4, i + 8), i = 0..2.
    assert "data_cidrs    = [for i in range(3) : cidrsubnet(var.cidr, 4, i + 8)]" in vpc_main
    data_subnets = [str(list(vpc.subnets(new_prefix=vpc.prefixlen + 4))[i + 8]) for i in range(3)]
    values = yaml.safe_load((CHART / f"values-{environment}.yaml").read_text())
    assert values["networkPolicy"]["storeCidrs"] == data_subnets


CHECKOV_SKIP = re.compile(r"#checkov:skip=(\w+):(.*)$", re.MULTILINE)


def test_every_checkov_skip_is_justified() -> None:
    skips = [(p, m) for p in FILES for m in CHECKOV_SKIP.finditer(p.read_text())]
    assert skips, "no skips found: the pattern is out of date"
    for path, match in skips:
        check, reason = match.groups()
        assert len(reason.strip()) >= 30, f"{path.name}: {check} is skipped without a real reason"


def test_service_secrets_hold_settings_the_services_read() -> None:
    from shopkit.settings import SERVICE_PORTS

    from .settings_catalog import known_variables

    text = (TERRAFORM / "modules" / "platform" / "main.tf").read_text()
    body = text[text.index("  kafka_settings = {") : text.index('module "kms"')]
    keys = set(re.findall(r"\b([A-Z][A-Z0-9_]{3,})\s*=", body))
    assert "SHOP_REDIS_URL" in keys
    assert "CATALOG_MONGO_URL" in keys
    everything = frozenset().union(*(known_variables(name) for name in SERVICE_PORTS))
    assert keys - everything == set()
    # MSK needs SASL/SCRAM over TLS: the Kafka client settings are written for every service.
    assert {
        "SHOP_KAFKA_SECURITY_PROTOCOL",
        "SHOP_KAFKA_SASL_USERNAME",
        "SHOP_KAFKA_SASL_PASSWORD",
    } <= keys
    assert "${upper(name)}_DATABASE_URL" in body
    for name in ("auth", "orders", "payments"):
        assert f"{name.upper()}_DATABASE_URL" in known_variables(name)
