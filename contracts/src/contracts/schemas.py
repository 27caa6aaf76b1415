"""JSON Schema of every event, and the compatibility rules between two versions of one type.

Within one `.vN` type a change must be additive: no removed or renamed field, no changed type,
no new required field, no narrowed set of allowed values. Anything else needs a new type.
"""

from __future__ import annotations

from typing import Any

from contracts.base import REGISTRY

JsonSchema = dict[str, Any]


def event_schema(ce_type: str) -> JsonSchema:
    model = REGISTRY[ce_type]
    schema = model.model_json_schema(mode="validation")
    schema["$id"] = ce_type
    schema["x-topic"] = model.topic
    schema["x-key"] = model.key_field
    return schema


def platform_types() -> list[str]:
    """Event types defined by this package (tests may register their own probe events)."""
    return sorted(t for t, model in REGISTRY.items() if model.__module__.startswith("contracts."))


def all_schemas() -> dict[str, JsonSchema]:
    return {ce_type: event_schema(ce_type) for ce_type in platform_types()}


def _resolve(node: JsonSchema, root: JsonSchema) -> JsonSchema:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = root["$defs"][name]
    return node


def _types(node: JsonSchema, root: JsonSchema) -> set[str]:
    """The JSON types a node admits (anyOf/oneOf flattened; refs resolved)."""
    node = _resolve(node, root)
    if "anyOf" in node or "oneOf" in node:
        found: set[str] = set()
        options: list[JsonSchema] = node.get("anyOf") or node.get("oneOf") or []
        for option in options:
            found |= _types(option, root)
        return found
    if "const" in node:
        return {type(node["const"]).__name__}
    kind = node.get("type")
    if isinstance(kind, list):
        return set(kind)
    if kind is None:
        return {"object"} if "properties" in node else {"any"}
    return {kind}


def _enum(node: JsonSchema, root: JsonSchema) -> set[Any] | None:
    node = _resolve(node, root)
    if "enum" in node:
        return set(node["enum"])
    if "const" in node:
        return {node["const"]}
    return None


def _compare(  # noqa: PLR0917 - recursive walk over two schemas and their roots
    old: JsonSchema,
    new: JsonSchema,
    old_root: JsonSchema,
    new_root: JsonSchema,
    path: str,
    problems: list[str],
) -> None:
    old, new = _resolve(old, old_root), _resolve(new, new_root)
    old_types, new_types = _types(old, old_root), _types(new, new_root)
    if "any" not in new_types and not old_types <= new_types:
        problems.append(f"{path}: type changed from {sorted(old_types)} to {sorted(new_types)}")
        return
    old_enum, new_enum = _enum(old, old_root), _enum(new, new_root)
    if old_enum is not None and new_enum is not None and not new_enum >= old_enum:
        problems.append(f"{path}: allowed values removed: {sorted(map(str, old_enum - new_enum))}")
    old_props = old.get("properties", {})
    new_props = new.get("properties", {})
    for name, old_prop in old_props.items():
        if name not in new_props:
            problems.append(f"{path}.{name}: field removed or renamed")
            continue
        _compare(old_prop, new_props[name], old_root, new_root, f"{path}.{name}", problems)
    newly_required = set(new.get("required", [])) - set(old.get("required", []))
    for name in sorted(newly_required):
        problems.append(f"{path}.{name}: new required field")
    if "items" in old and "items" in new:
        _compare(old["items"], new["items"], old_root, new_root, f"{path}[]", problems)
    for key in ("anyOf", "oneOf"):
        for old_opt, new_opt in zip(old.get(key, []), new.get(key, []), strict=False):
            if _types(old_opt, old_root) == _types(new_opt, new_root):
                _compare(old_opt, new_opt, old_root, new_root, path, problems)


def incompatibilities(old: JsonSchema, new: JsonSchema) -> list[str]:
    """Why `new` cannot replace `old` under the same event type (empty when it can)."""
    problems: list[str] = []
    if old.get("x-topic") != new.get("x-topic"):
        problems.append(f"topic changed from {old.get('x-topic')} to {new.get('x-topic')}")
    if old.get("x-key") != new.get("x-key"):
        problems.append(f"key changed from {old.get('x-key')} to {new.get('x-key')}")
    _compare(old, new, old, new, "$", problems)
    return problems
