"""The committed JSON Schema snapshots guard every event type against incompatible change."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from contracts.asyncapi import document

from contracts.schemas import all_schemas, incompatibilities

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOTS = ROOT / "schemas"


def _snapshot(ce_type: str) -> dict[str, object]:
    return json.loads((SNAPSHOTS / f"{ce_type}.json").read_text())  # type: ignore[no-any-return]


def test_every_event_type_has_a_snapshot_and_no_snapshot_lost_its_type() -> None:
    current = set(all_schemas())
    committed = {p.name.removesuffix(".json") for p in SNAPSHOTS.glob("*.json")}
    assert committed - current == set(), "event types removed: publish a new version instead"
    assert current - committed == set(), "new event types without a snapshot: run `make asyncapi`"


@pytest.mark.parametrize("ce_type", sorted(all_schemas()))
def test_current_model_is_compatible_with_its_snapshot(ce_type: str) -> None:
    assert incompatibilities(_snapshot(ce_type), all_schemas()[ce_type]) == []


@pytest.mark.parametrize("ce_type", sorted(all_schemas()))
def test_snapshot_is_current(ce_type: str) -> None:
    assert _snapshot(ce_type) == json.loads(json.dumps(all_schemas()[ce_type])), (
        "additive change not yet recorded: run `make asyncapi` and commit the snapshot"
    )


BASE = "shop.orders.order_placed.v1"


def test_compatibility_rules_catch_each_kind_of_breaking_change() -> None:
    old = _snapshot(BASE)

    removed = copy.deepcopy(old)
    del removed["properties"]["coupon_code"]  # type: ignore[index, attr-defined]
    assert any("removed" in p for p in incompatibilities(old, removed))

    retyped = copy.deepcopy(old)
    retyped["properties"]["total"] = {"type": "string"}  # type: ignore[index]
    assert any("type changed" in p for p in incompatibilities(old, retyped))

    required = copy.deepcopy(old)
    required["properties"]["gift_message"] = {"type": "string"}  # type: ignore[index]
    required["required"] = [*required["required"], "gift_message"]  # type: ignore[list-item]
    assert any("new required field" in p for p in incompatibilities(old, required))

    nested = copy.deepcopy(old)
    del nested["$defs"]["OrderLine"]["properties"]["unit_price"]  # type: ignore[index, attr-defined]
    assert any("unit_price" in p for p in incompatibilities(old, nested))

    optional = copy.deepcopy(old)
    optional["properties"]["gift_message"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}  # type: ignore[index]
    assert incompatibilities(old, optional) == []


def test_narrowing_allowed_values_is_breaking() -> None:
    ce_type = "shop.orders.order_cancelled.v1"
    old = _snapshot(ce_type)
    narrowed = copy.deepcopy(old)
    target = narrowed["properties"]["reason"]  # type: ignore[index]
    target["enum"] = target["enum"][:-1]
    assert any("allowed values removed" in p for p in incompatibilities(old, narrowed))


def test_asyncapi_document_is_current_and_references_resolve() -> None:
    committed = yaml.safe_load((ROOT / "asyncapi.yaml").read_text())
    assert committed == json.loads(json.dumps(document())), "run `make asyncapi` and commit"
    assert committed["asyncapi"] == "3.0.0"

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(committed):
        target: object = committed
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(target, dict) and part in target, f"dangling $ref {ref}"
            target = target[part]
    addresses = {c["address"] for c in committed["channels"].values()}
    assert addresses == {
        f"{c}.events"
        for c in (
            "auth",
            "users",
            "catalog",
            "inventory",
            "orders",
            "payments",
            "shipping",
            "notifications",
        )
    }
