"""Parse PromQL expressions and report the series and labels they use (run by test_monitoring).

Runs in an ephemeral environment with PyPI `promql-parser` (the Rust PromQL parser's Python
binding), so the library stays out of the project's lock:

    uv run --no-project --with promql-parser==0.11.0 python tests/deploy/promql_check.py < in.json

Input: JSON list of {"where": str, "expr": str}. Output: JSON list of {"where", "error"} or
{"where", "selectors": [{"name", "labels": {label: value-or-null}}], "grouping": [labels]}.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import promql_parser as promql  # type: ignore[import-not-found]


def _walk(node: Any, selectors: list[dict[str, Any]], grouping: set[str]) -> None:
    if isinstance(node, promql.VectorSelector):
        labels = {
            m.name: (m.value if m.op == promql.MatchOp.Equal else None)
            for m in node.matchers.matchers
        }
        name = node.name or labels.pop("__name__", None)
        selectors.append({"name": name, "labels": labels})
    elif isinstance(node, promql.MatrixSelector):
        _walk(node.vector_selector, selectors, grouping)
    elif isinstance(node, promql.AggregateExpr):
        if node.modifier is not None:
            grouping.update(node.modifier.labels)
        _walk(node.expr, selectors, grouping)
        if node.param is not None:
            _walk(node.param, selectors, grouping)
    elif isinstance(node, promql.Call):
        for argument in node.args:
            _walk(argument, selectors, grouping)
    elif isinstance(node, promql.BinaryExpr):
        _walk(node.lhs, selectors, grouping)
        _walk(node.rhs, selectors, grouping)
    elif isinstance(node, (promql.ParenExpr, promql.UnaryExpr, promql.SubqueryExpr)):
        _walk(node.expr, selectors, grouping)


def main() -> None:
    results = []
    for item in json.load(sys.stdin):
        try:
            tree = promql.parse(item["expr"])
        except Exception as error:  # the parser raises plain exceptions with the position
            results.append({"where": item["where"], "error": str(error)})
            continue
        selectors: list[dict[str, Any]] = []
        grouping: set[str] = set()
        _walk(tree, selectors, grouping)
        results.append(
            {"where": item["where"], "selectors": selectors, "grouping": sorted(grouping)}
        )
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
