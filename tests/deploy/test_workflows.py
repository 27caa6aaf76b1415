"""GitHub workflows: valid YAML, valid workflows (actionlint, built from the Go module proxy),
only make targets that exist, only files that exist, and the delivery order the platform needs
(build every component, deploy staging, promote to production behind a manual gate).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from shopkit.settings import SERVICE_PORTS

from .support import ROOT, run

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict), path.name
    # YAML 1.1 reads the key `on` as True.
    if True in document:
        document["on"] = document.pop(True)
    return document


def run_scripts(document: dict[str, Any]) -> list[str]:
    return [
        step["run"]
        for job in document["jobs"].values()
        for step in job.get("steps", [])
        if "run" in step
    ]


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-zA-Z][\w-]*)\s*:(?!=)", text, flags=re.MULTILINE))


def test_there_are_the_expected_workflows() -> None:
    assert {p.name for p in WORKFLOWS} == {"ci.yaml", "delivery.yaml", "deploy-checks.yaml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_is_valid_yaml_with_jobs(path: Path) -> None:
    document = load(path)
    assert document["name"]
    assert document["on"]
    assert document["jobs"]
    for name, job in document["jobs"].items():
        assert job["runs-on"], name
        assert job["steps"], name
        assert job.get("timeout-minutes"), f"{name} has no timeout"


def test_actionlint_accepts_every_workflow() -> None:
    actionlint = (
        run(["bash", str(ROOT / "deploy" / "tools" / "install-actionlint.sh")])
        .stdout.strip()
        .splitlines()[-1]
    )
    run([actionlint, "-no-color", *map(str, WORKFLOWS)])


def test_workflows_call_only_make_targets_that_exist() -> None:
    targets = makefile_targets()
    assert {"test", "lint", "up", "down"} <= targets
    used = {
        (path.name, target)
        for path in WORKFLOWS
        for script in run_scripts(load(path))
        for target in re.findall(r"(?:^|[;&|\s])make\s+(?:-\S+\s+)*([a-zA-Z][\w-]*)", script)
    }
    assert used, "no make target is used at all"
    assert [
        f"{name}: make {target}" for name, target in sorted(used) if target not in targets
    ] == []


def test_the_target_check_sees_a_missing_target() -> None:
    assert "deploy-everything" not in makefile_targets()
    assert re.findall(
        r"(?:^|[;&|\s])make\s+(?:-\S+\s+)*([a-zA-Z][\w-]*)", "cd x && make -j2 lint"
    ) == ["lint"]


def test_files_the_workflows_name_exist() -> None:
    for path in WORKFLOWS:
        for script in run_scripts(load(path)):
            for name in re.findall(r"((?:deploy|infra|tests)/[\w./-]+\.(?:sh|py|yaml))", script):
                assert (ROOT / name).exists(), f"{path.name} runs {name}, which does not exist"


def test_ci_tests_with_service_containers_and_runs_the_whole_stack() -> None:
    ci = load(ROOT / ".github" / "workflows" / "ci.yaml")
    services = set(ci["jobs"]["test"]["services"])
    assert services >= {"postgres", "redis", "kafka", "mongo", "mailpit"}
    assert any("make lint" in s for s in run_scripts({"jobs": {"lint": ci["jobs"]["lint"]}}))
    assert any("make test" in s for s in run_scripts({"jobs": {"stack": ci["jobs"]["stack"]}}))


def test_delivery_builds_every_component_then_staging_then_gated_production() -> None:
    delivery = load(ROOT / ".github" / "workflows" / "delivery.yaml")
    jobs = delivery["jobs"]
    components = jobs["images"]["strategy"]["matrix"]["component"]
    assert set(components) == {*SERVICE_PORTS, "cli"}
    assert delivery["env"]["COMPONENTS"].split() == components
    build = next(
        s
        for s in jobs["images"]["steps"]
        if s.get("uses", "").startswith("docker/build-push-action")
    )
    assert build["with"]["file"] == "Dockerfile"
    assert build["with"]["build-args"] == "SERVICE=${{ matrix.component }}"
    assert jobs["deploy-staging"]["needs"] == "images"
    assert jobs["deploy-staging"]["environment"] == "staging"
    assert set(jobs["promote-production"]["needs"]) == {"images", "deploy-staging"}
    assert jobs["promote-production"]["environment"] == "production"
    for job, values in (
        ("deploy-staging", "values-staging.yaml"),
        ("promote-production", "values-production.yaml"),
    ):
        script = "\n".join(run_scripts({"jobs": {job: jobs[job]}}))
        assert f"deploy/helm/shop/{values}" in script
        assert "global.imageDigests" in script
        assert "--atomic" in script
    assert delivery["permissions"]["id-token"] == "write"
