"""docker-compose.yml: valid against the compose specification (vendored JSON schema) and, where
Debian's `docker-compose` is installed, `docker-compose config`; every service the code runs is
there with a health check and ordered start-up; every variable a shopstream container gets is a
setting; secrets are required, never defaulted; ports are published on the loopback only; the
Prometheus, alert-rule, Grafana and topology-overlay files it mounts are valid."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from shopstream.cli import main as shopstream_main
from tests.deploy.settings_names import (
    PENDING_PROCESSORS,
    PENDING_SETTINGS,
    chart_env_name,
    required_env_names,
    settings_env_names,
    worker_processors,
)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
SHOPSTREAM = {name: s for name, s in SERVICES.items() if s.get("image") == "shopstream:local"}
LONG_RUNNING = {name for name in SHOPSTREAM if name != "topics"}
SECRET_VARS = ["REDIS_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "SHOPSTREAM_SHOPIFY_SECRET", "SHOPSTREAM_STRIPE_SECRET",
               "SHOPSTREAM_WOOCOMMERCE_SECRET", "SHOPSTREAM_CARRIER_SECRET", "SHOPSTREAM_RETURNS_SECRET",
               "SHOPSTREAM_ERP_SECRET", "SHOPSTREAM_API_TOKENS_PATH", "SHOPSTREAM_SHOPIFY_ACCESS_TOKEN"]
ADMIN_PORT = "9464"


def test_valid_against_the_compose_specification() -> None:
    schema = json.loads((Path(__file__).parent / "schemas" / "compose-spec.json").read_text())
    jsonschema.Draft7Validator(schema).validate(COMPOSE)


def test_the_schema_catches_a_misspelt_key() -> None:
    schema = json.loads((Path(__file__).parent / "schemas" / "compose-spec.json").read_text())
    broken = yaml.safe_load(COMPOSE_FILE.read_text())
    broken["services"]["api"]["helthcheck"] = broken["services"]["api"].pop("healthcheck")
    with pytest.raises(jsonschema.ValidationError, match="helthcheck"):
        jsonschema.Draft7Validator(schema).validate(broken)


# Skipped only outside CI (a developer machine without the Debian package); .ci/run installs it, and
# under CI=true a missing tool fails instead of skipping.
@pytest.mark.skipif(shutil.which("docker-compose") is None and os.environ.get("CI") != "true",
                    reason="Debian's docker-compose is not installed (apt-get install docker-compose); "
                           "the compose-spec schema test above still runs")
def test_docker_compose_config(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARS}
    missing = subprocess.run(["docker-compose", "-f", str(COMPOSE_FILE), "config", "-q"],
                             capture_output=True, text=True, env=env, timeout=60)
    assert missing.returncode != 0 and "Missing mandatory value" in missing.stderr, missing.stderr
    env |= {name: "test-value" for name in SECRET_VARS} | {"SHOPSTREAM_API_TOKENS_PATH": str(tmp_path / "t.yaml")}
    ok = subprocess.run(["docker-compose", "-f", str(COMPOSE_FILE), "config", "-q"],
                        capture_output=True, text=True, env=env, timeout=60)
    assert ok.returncode == 0, ok.stderr


def test_every_service_the_code_runs_is_there() -> None:
    workers = worker_processors() | set(PENDING_PROCESSORS)
    expected = {"kafka", "schema-registry", "redis", "prometheus", "grafana", "topics", "connectors", "api"}
    expected |= {f"worker-{w}" for w in workers}
    assert expected <= set(SERVICES), sorted(expected - set(SERVICES))
    for w in workers:
        assert SERVICES[f"worker-{w}"]["command"] == ["worker", w, "--port", ADMIN_PORT]
    assert SERVICES["connectors"]["command"] == ["connectors", "serve"]
    assert SERVICES["api"]["command"] == ["api", "serve"]
    assert SERVICES["topics"]["command"][:3] == ["topics", "apply", "--overlay"]
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:")
    assert "controller" in SERVICES["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
    assert SERVICES["schema-registry"]["image"].startswith("confluentinc/cp-schema-registry:")


def test_env_vars_are_settings() -> None:
    known = settings_env_names() | set(PENDING_SETTINGS)
    for name, service in SHOPSTREAM.items():
        env = service["environment"]
        unknown = set(env) - known
        assert not unknown, f"{name}: {sorted(unknown)} are not settings (shopstream/config.py)"
        assert not required_env_names() - set(env), name
        for needed in ("KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL", "REDIS_URL", "SHOPSTREAM_TOPOLOGY_OVERLAY"):
            assert env.get(needed), f"{name}: {needed}"
        assert env[chart_env_name("adminPort")] == ADMIN_PORT, "the chart and compose name the admin port alike"


def test_secrets_are_required_not_defaulted() -> None:
    text = COMPOSE_FILE.read_text()
    for var in SECRET_VARS:
        uses = re.findall(r"\$\{" + var + r"([^}]*)\}", text)
        assert uses, f"{var} is not used"
        assert all(u.startswith(":?") for u in uses), f"{var} must be ${{{var}:?message}}, got {uses}"
    env = SERVICES["connectors"]["environment"]
    for var in (v for v in SECRET_VARS if v.startswith("SHOPSTREAM_") and v.endswith("_SECRET")):
        assert env[var].startswith("${" + var + ":?"), var
    assert "${REDIS_PASSWORD:?" in SERVICES["api"]["environment"]["REDIS_URL"]
    assert SERVICES["api"]["environment"]["SHOPSTREAM_API_TOKENS_FILE"] == "/run/secrets/api_tokens"


def test_image_health_check_reads_the_same_admin_port_variable() -> None:
    text = (ROOT / "deploy" / "healthcheck.py").read_text()
    assert f'ADMIN_PORT_ENV = "{chart_env_name("adminPort")}"' in text
    assert f'DEFAULT_ADMIN_PORT = "{ADMIN_PORT}"' in text


def test_ports_only_on_the_loopback() -> None:
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"


def test_health_checks_and_ordered_start() -> None:
    for name, service in SERVICES.items():
        if name == "topics":
            assert service["restart"] == "no" and service["healthcheck"] == {"disable": True}
            assert service["depends_on"] == {"kafka": {"condition": "service_healthy"}}
            continue
        assert service["healthcheck"]["test"], name
    for name in LONG_RUNNING:
        deps = SERVICES[name]["depends_on"]
        for infra in ("kafka", "schema-registry", "redis"):
            assert deps[infra] == {"condition": "service_healthy"}, (name, infra)
        assert deps["topics"] == {"condition": "service_completed_successfully"}, name
        assert SERVICES[name]["healthcheck"]["test"] == ["CMD", "shopstream-healthcheck",
                                                        f"http://127.0.0.1:{ADMIN_PORT}/readyz"]
    assert SERVICES["grafana"]["depends_on"] == {"prometheus": {"condition": "service_healthy"}}


def test_containers_are_hardened() -> None:
    for name, service in SHOPSTREAM.items():
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"], name
        assert service["user"] == "10001:10001" and "no-new-privileges:true" in service["security_opt"], name


def test_redis_is_persistent_without_eviction() -> None:
    command = SERVICES["redis"]["command"]
    assert "--maxmemory-policy noeviction" in command and "--appendonly yes" in command
    assert any(v.endswith(":/data") for v in SERVICES["redis"]["volumes"])


def test_mounted_files_exist() -> None:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source}"


def test_compose_topology_overlay_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert shopstream_main(["topics", "check", "--overlay", str(ROOT / "deploy" / "topology-compose.yaml")]) == 0


def test_prometheus_scrapes_every_service_with_the_alert_rules() -> None:
    prom = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    targets = {t for job in prom["scrape_configs"] if job["job_name"] == "shopstream"
               for sc in job["static_configs"] for t in sc["targets"]}
    assert targets == {f"{name}:{ADMIN_PORT}" for name in LONG_RUNNING}
    assert prom["rule_files"] == ["/etc/prometheus/alerts.yml"]
    assert "./deploy/alerts.yml:/etc/prometheus/alerts.yml:ro" in SERVICES["prometheus"]["volumes"]
    rules = yaml.safe_load((ROOT / "deploy" / "alerts.yml").read_text())
    names = [r["alert"] for g in rules["groups"] for r in g["rules"]]
    assert len(names) == len(set(names)) >= 4
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["expr"] and rule["labels"]["severity"] in ("warning", "critical") and rule["annotations"]


def test_grafana_dashboard_is_provisioned() -> None:
    grafana = ROOT / "deploy" / "grafana"
    datasource = yaml.safe_load((grafana / "provisioning/datasources/prometheus.yml").read_text())["datasources"][0]
    provider = yaml.safe_load((grafana / "provisioning/dashboards/shopstream.yml").read_text())["providers"][0]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in SERVICES["grafana"]["volumes"]
    dashboard = json.loads((grafana / "dashboards/shopstream.json").read_text())
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == datasource["uid"]
        assert all(t["expr"] for t in panel["targets"])
