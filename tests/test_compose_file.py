"""docker-compose.yml is valid against the Compose spec and keeps its promises.

There is no Docker engine on the dev machines, so the file is checked against
the compose-spec JSON schema bundled with check-jsonschema, and structurally.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"
ONE_SHOT = {"migrate"}
APP_SERVICES = ("api", "worker")


def _check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("check-jsonschema")
    if not exe.exists():
        pytest.fail(f"check-jsonschema not found next to {sys.executable}: install the dev extras")
    result = subprocess.run(
        [str(exe), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if "Traceback" in result.stderr:  # the tool itself broke: not a verdict on the file
        pytest.fail(
            "check-jsonschema crashed (0.38.1 needs click>=8.5, faust pins click<8.4; "
            f"use check-jsonschema==0.38.0):\n{result.stderr[-2000:]}"
        )
    return result


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    found = document["services"]
    assert isinstance(found, dict)
    return found


def test_compose_file_matches_the_compose_spec() -> None:
    result = _check_jsonschema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_a_broken_file(tmp_path: Path) -> None:
    document = yaml.safe_load(COMPOSE.read_text())
    document["services"]["worker"]["restart"] = ["not", "a", "string"]
    document["services"]["api"]["healthcheck"]["retries"] = "many"
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(document))
    result = _check_jsonschema(broken)
    assert result.returncode != 0
    assert "worker" in result.stdout + result.stderr


def test_expected_services_exist(services: dict[str, Any]) -> None:
    assert {"kafka", "postgres", "redis", "migrate", "api", "worker"} <= services.keys()
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["postgres"]["image"].startswith("postgres:")


def test_worker_can_be_scaled(services: dict[str, Any]) -> None:
    worker = services["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker


def test_every_long_running_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", name
            continue
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), name


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_waits_for_migrations_and_kafka(services: dict[str, Any], name: str) -> None:
    depends = services[name]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["kafka"]["condition"] == "service_healthy"


def test_migrate_waits_for_healthy_postgres(services: dict[str, Any]) -> None:
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", [*APP_SERVICES, "migrate"])
def test_app_environment(services: dict[str, Any], name: str) -> None:
    env = services[name]["environment"]
    assert env["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert env["PUNCHLINE_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env["PUNCHLINE_PARTITIONS"] == "12"
    assert env["PUNCHLINE_SECRET_KEY"].startswith("${PUNCHLINE_SECRET_KEY:?")
    assert services[name]["build"]["context"] == "."
