"""The Helm chart, through the real Helm engine (helm-python-sdk embeds Helm's Go library; offline):
`helm lint`, rendering with the default values (plus the three connection values every install must
give) and with `ci/production-values.yaml`, every manifest against the Kubernetes schemas
(kubernetes-validate, strict), `values.schema.json` rejecting wrong values, and every environment
variable a container gets checked against the settings object.

Rendering is module-scoped: each values set is rendered once (~0.1 s each).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

from shopstream.config import ConfigError, load_settings
from tests.deploy.settings_names import (
    PENDING_PROCESSORS,
    PENDING_SETTINGS,
    chart_env_name,
    required_env_names,
    settings_env_names,
    worker_processors,
)

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "shopstream"
SCHEMAS = Path(__file__).parent / "schemas"
KUBE_VERSION = "1.30.0"  # helm lint's target
#: Strict schema validation at the chart's floor (Chart.yaml kubeVersion) and the newest bundled schemas.
KUBE_VERSIONS = ["1.25.0", kubernetes_validate.latest_version()]
CONNECTION = {
    "kafka": {"bootstrapServers": "kafka:9092"},
    "schemaRegistry": {"url": "http://schema-registry:8081"},
    "redis": {"url": "redis://redis:6379/0"},
    "secrets": {"existingSecret": "shopstream-webhooks"},
}
PRODUCTION = yaml.safe_load((CHART / "ci" / "production-values.yaml").read_text())
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor_v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule_v1.json",
}


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.fixture(scope="module")
def chart() -> helm.Chart:
    return helm.Chart.load(str(CHART))


def render(chart: helm.Chart, values: dict[str, Any]) -> list[dict[str, Any]]:
    out = chart.render(values, name="shop", namespace="shop", is_install=True)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(out.items()):
        if path.endswith(".txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


@pytest.fixture(scope="module")
def default_docs(chart: helm.Chart) -> list[dict[str, Any]]:
    return render(chart, CONNECTION)


@pytest.fixture(scope="module")
def production_docs(chart: helm.Chart) -> list[dict[str, Any]]:
    return render(chart, PRODUCTION)


@pytest.fixture(scope="module", params=["default", "production"])
def docs(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return request.getfixturevalue(f"{request.param}_docs")


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for d in docs:
        if d["kind"] in ("Deployment", "Job"):
            yield d["metadata"]["name"], d["spec"]["template"]["spec"]


def containers(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, spec in pod_specs(docs):
        for c in spec.get("initContainers", []) + spec["containers"]:
            yield f"{name}/{c['name']}", c


# -- helm lint and the Kubernetes schemas ------------------------------------------------------------

@pytest.mark.parametrize("values", [CONNECTION, PRODUCTION], ids=["default", "production"])
def test_helm_lint_strict(values: dict[str, Any]) -> None:
    report = helm.lint(str(CHART), values, strict=True, kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"] and not problems, report


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_manifest_validates_strictly(docs: list[dict[str, Any]], kube_version: str) -> None:
    kinds = set()
    for doc in docs:
        kinds.add(doc["kind"])
        crd = CRD_SCHEMAS.get((doc["apiVersion"], doc["kind"]))
        if crd:  # not a built-in kind: the Prometheus Operator's CRD schema, vendored
            # (not check_schema: Go-style "(?i)" patterns in it fail the metaschema's regex format)
            jsonschema.Draft7Validator(json.loads((SCHEMAS / crd).read_text())).validate(doc)
            continue
        kubernetes_validate.validate(doc, kube_version, strict=True)
    assert {"Deployment", "Service", "ConfigMap", "Job", "PodDisruptionBudget", "NetworkPolicy"} <= kinds


def test_strict_validation_catches_an_unknown_field(default_docs: list[dict[str, Any]]) -> None:
    deployment = copy.deepcopy(of_kind(default_docs, "Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)


def test_production_renders_the_optional_objects(production_docs: list[dict[str, Any]]) -> None:
    kinds = {d["kind"] for d in production_docs}
    assert {"Ingress", "HorizontalPodAutoscaler", "ServiceMonitor", "PrometheusRule"} <= kinds
    assert not {"Ingress", "HorizontalPodAutoscaler", "ServiceMonitor", "PrometheusRule", "Secret"} & {
        d["kind"] for d in render(helm.Chart.load(str(CHART)), CONNECTION)}


# -- values.schema.json ----------------------------------------------------------------------------

@pytest.mark.parametrize("bad, where", [
    ({"connectors": {"replicas": "two"}}, "/connectors/replicas"),
    ({"processors": {"orders": {"replicas": "two"}}}, "/processors/orders/replicas"),
    ({"replicaCount": 2}, "replicaCount"),
    ({"api": {"tokenz": {}}}, "tokenz"),
    ({"processors": {"orders": {"adminPort": 70000}}}, "/processors/orders/adminPort"),
    ({"kafka": {"securityProtocol": "TLS"}}, "/kafka/securityProtocol"),
    ({"connectors": {"extraEnv": {"lower-case": "x"}}}, "lower-case"),
])
def test_schema_rejects_wrong_values(chart: helm.Chart, bad: dict[str, Any], where: str) -> None:
    with pytest.raises(helm.HelmValuesError) as err:
        chart.render(deep_merge(CONNECTION, bad), name="shop", namespace="shop")
    assert where in str(err.value)


def test_required_connection_values_fail_the_install(chart: helm.Chart) -> None:
    with pytest.raises(helm.HelmRenderError, match=r"kafka\.bootstrapServers is required"):
        chart.render({}, name="shop", namespace="shop")


# -- environment against the settings object -------------------------------------------------------

def test_every_env_var_exists_in_settings(docs: list[dict[str, Any]]) -> None:
    known = settings_env_names() | set(PENDING_SETTINGS)
    for where, c in containers(docs):
        names = [e["name"] for e in c.get("env", [])]
        assert len(names) == len(set(names)), f"{where}: duplicate env {names}"
        unknown = set(names) - known
        assert not unknown, f"{where}: {sorted(unknown)} are not settings (shopstream/config.py)"
        assert not c.get("envFrom"), f"{where}: envFrom hides names from this check"
        missing = required_env_names() - set(names)
        assert not missing, f"{where}: settings without a default not provided: {sorted(missing)}"
        for needed in ("KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL", "REDIS_URL"):
            assert needed in names, f"{where}: {needed} (required by every role at start) is missing"


def test_pending_names_are_still_pending() -> None:
    """Tripwire for the merge: a pending name that landed in Settings must leave PENDING_SETTINGS."""
    landed = set(PENDING_SETTINGS) & settings_env_names()
    assert not landed, f"{sorted(landed)} are settings now: remove them from tests/deploy/settings_names.py"
    landed_workers = set(PENDING_PROCESSORS) & worker_processors()
    assert not landed_workers, f"{sorted(landed_workers)} exist now: remove them from PENDING_PROCESSORS"


def test_literal_env_values_are_valid_settings(docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every literal value the chart sets passes the settings object's own validation."""
    for where, c in containers(docs):
        with monkeypatch.context() as m:
            for e in c.get("env", []):
                if "value" in e and e["name"] in settings_env_names():
                    m.setenv(e["name"], e["value"])
            try:
                load_settings()
            except ConfigError as exc:  # pragma: no cover - the message is the assertion
                pytest.fail(f"{where}: {exc}")


def test_processors_match_the_cli(default_docs: list[dict[str, Any]]) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values["processors"]) == worker_processors() | set(PENDING_PROCESSORS)
    workers = {d["metadata"]["name"]: d for d in of_kind(default_docs, "Deployment")}
    for name, spec in values["processors"].items():
        deployment = workers[f"shop-shopstream-worker-{name}"]
        c = deployment["spec"]["template"]["spec"]["containers"][0]
        assert c["args"] == ["worker", name, "--port", str(spec["adminPort"])]


def test_a_processor_can_be_switched_off(chart: helm.Chart) -> None:
    docs = render(chart, deep_merge(CONNECTION, {"processors": {"review": {"enabled": False}}}))
    names = {d["metadata"]["name"] for d in docs}
    assert "shop-shopstream-worker-review" not in names
    assert "shop-shopstream-worker-orders" in names


# -- hardening, probes, resources ------------------------------------------------------------------

def test_pods_are_hardened(docs: list[dict[str, Any]]) -> None:
    for name, spec in pod_specs(docs):
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] >= 10000, name
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "emptyDir" in volumes["state"] and "emptyDir" in volumes["tmp"], name
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"] and not sc.get("privileged"), name
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            assert mounts["/var/lib/shopstream"] == "state" and mounts["/tmp"] == "tmp", name
            env = {e["name"]: e.get("value") for e in c["env"]}
            assert env["SHOPSTREAM_STATE_DIR"] == "/var/lib/shopstream", name
            res = c["resources"]
            assert {"cpu", "memory"} <= set(res["requests"]) and {"cpu", "memory"} <= set(res["limits"]), name
            assert "@sha256:" in c["image"] or ":" in c["image"], name


def test_probes_use_the_admin_port(docs: list[dict[str, Any]]) -> None:
    admin_env = chart_env_name("adminPort")
    for d in of_kind(docs, "Deployment"):
        c = d["spec"]["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env[admin_env] == str(ports["admin"]), d["metadata"]["name"]
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
        assert c["livenessProbe"]["httpGet"]["port"] in ("admin", "http")
        assert c["startupProbe"]["httpGet"] == c["livenessProbe"]["httpGet"]


def test_every_deployment_has_a_pdb(docs: list[dict[str, Any]]) -> None:
    pdbs = {tuple(sorted(p["spec"]["selector"]["matchLabels"].items())) for p in of_kind(docs, "PodDisruptionBudget")}
    for d in of_kind(docs, "Deployment"):
        assert tuple(sorted(d["spec"]["selector"]["matchLabels"].items())) in pdbs, d["metadata"]["name"]


def test_hpa_replaces_fixed_replicas(production_docs: list[dict[str, Any]]) -> None:
    scaled = {h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(production_docs, "HorizontalPodAutoscaler")}
    assert {"shop-shopstream-connectors", "shop-shopstream-worker-orders"} <= set(scaled)
    assert any(m["type"] == "External" for m in scaled["shop-shopstream-worker-orders"]["spec"]["metrics"])
    for d in of_kind(production_docs, "Deployment"):
        assert ("replicas" in d["spec"]) != (d["metadata"]["name"] in scaled), d["metadata"]["name"]


# -- topics job, config, secrets, exposure ---------------------------------------------------------

def test_topics_job_is_a_pre_install_hook_with_the_overlay(docs: list[dict[str, Any]]) -> None:
    (job,) = of_kind(docs, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["topics", "apply", "--overlay", "/etc/shopstream/config/overlay.yaml"]
    # Hooks run before the release's objects exist: its ConfigMap and ServiceAccount are hooks too, earlier.
    hooks = {(d["kind"], d["metadata"]["name"]): d["metadata"].get("annotations", {}) for d in docs}
    spec = job["spec"]["template"]["spec"]
    cm = next(v["configMap"]["name"] for v in spec["volumes"] if v["name"] == "config")
    for key in (("ConfigMap", cm), ("ServiceAccount", spec["serviceAccountName"])):
        assert int(hooks[key]["helm.sh/hook-weight"]) < int(job["metadata"]["annotations"]["helm.sh/hook-weight"])


def test_config_files_are_the_repository_ones() -> None:
    """files/ holds copies (Helm reads only inside the chart); they must not drift from topology/."""
    pairs = [(CHART / "files/alerts.yml", ROOT / "deploy/alerts.yml")]
    for path in (CHART / "files/topology").rglob("*.yaml"):
        pairs.append((path, ROOT / "topology" / path.relative_to(CHART / "files/topology")))
    assert len(pairs) >= 5
    for copied, source in pairs:
        assert copied.read_text() == source.read_text(), f"{copied} differs from {source}: run `make chart-files`"
    shipped = {p.name for p in (ROOT / "topology/mappings").glob("*.yaml")}
    assert shipped == {p.name for p in (CHART / "files/topology/mappings").glob("*.yaml")}


def test_config_change_rolls_the_pods(chart: helm.Chart, default_docs: list[dict[str, Any]]) -> None:
    changed = render(chart, deep_merge(CONNECTION, {"config": {"ordersPolicy": "parking: {max_events: 7}\n"}}))

    def checksums(docs: list[dict[str, Any]]) -> set[str]:
        return {d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
                for d in of_kind(docs, "Deployment")}

    before, after = checksums(default_docs), checksums(changed)
    assert len(before) == 1 and len(after) == 1 and before != after
    (cm,) = [d for d in of_kind(default_docs, "ConfigMap") if d["metadata"]["name"] == "shop-shopstream"]
    assert {"overlay.yaml", "orders_policy.yaml", "returns_policy.yaml", "mapping.shopify.yaml"} <= set(cm["data"])
    assert hashlib.sha256(b"").hexdigest() not in before


def test_nothing_secret_in_configmaps_or_literal_env(docs: list[dict[str, Any]]) -> None:
    secret_vars = {"KAFKA_SASL_PASSWORD", "SHOPSTREAM_SHOPIFY_SECRET", "SHOPSTREAM_STRIPE_SECRET",
                   "SHOPSTREAM_WOOCOMMERCE_SECRET", "SHOPSTREAM_CARRIER_SECRET", "SHOPSTREAM_RETURNS_SECRET",
                   "SHOPSTREAM_ERP_SECRET", "SHOPSTREAM_SHOPIFY_ACCESS_TOKEN", "SHOPSTREAM_WOOCOMMERCE_CONSUMER_KEY",
                   "SHOPSTREAM_WOOCOMMERCE_CONSUMER_SECRET"}
    for where, c in containers(docs):
        for e in c["env"]:
            if e["name"] in secret_vars:
                assert "secretKeyRef" in e.get("valueFrom", {}), f"{where}: {e['name']} must come from a Secret"
    for cm in of_kind(docs, "ConfigMap"):
        text = json.dumps(cm["data"]).lower()
        assert "password" not in text and "secret" not in text, cm["metadata"]["name"]


def test_secrets_by_reference_in_production(production_docs: list[dict[str, Any]]) -> None:
    refs = {}
    for _where, c in containers(production_docs):
        for e in c["env"]:
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                refs[e["name"]] = ref["name"]
    assert refs["KAFKA_SASL_PASSWORD"] == "shopstream-kafka"
    assert refs["REDIS_URL"] == "shopstream-redis"
    assert refs["SHOPSTREAM_SHOPIFY_SECRET"] == "shopstream-webhooks"
    api = next(d for d in of_kind(production_docs, "Deployment") if d["metadata"]["name"] == "shop-shopstream-api")
    volumes = {v["name"]: v for v in api["spec"]["template"]["spec"]["volumes"]}
    assert volumes["api-tokens"]["secret"]["secretName"] == "shopstream-api-tokens"
    assert not of_kind(production_docs, "Secret")


def test_webhook_secrets_are_required(chart: helm.Chart) -> None:
    with pytest.raises(helm.HelmRenderError, match=r"secrets\.existingSecret"):
        chart.render({**CONNECTION, "secrets": {}}, name="shop", namespace="shop")
    # no connectors and no shop writer: no secrets
    render(chart, {**CONNECTION, "secrets": {}, "connectors": {"enabled": False},
                   "processors": {"shop-writer": {"enabled": False}}})


def test_secret_created_only_on_request(chart: helm.Chart) -> None:
    docs = render(chart, deep_merge(CONNECTION, {"secrets": {"existingSecret": "", "create": True,
                                                             "values": {"shopify-secret": "s3"}}}))
    (secret,) = of_kind(docs, "Secret")
    assert secret["stringData"] == {"shopify-secret": "s3"}


def test_ingress_exposes_only_webhooks_over_tls(production_docs: list[dict[str, Any]]) -> None:
    (ing,) = of_kind(production_docs, "Ingress")
    paths = [p for rule in ing["spec"]["rules"] for p in rule["http"]["paths"]]
    assert [(p["path"], p["pathType"]) for p in paths] == [("/webhooks/", "Prefix")]
    assert paths[0]["backend"]["service"]["name"] == "shop-shopstream-connectors"
    assert ing["spec"]["tls"][0]["secretName"] == "hooks-shop-example-com-tls"


def test_api_is_internal(docs: list[dict[str, Any]]) -> None:
    for svc in of_kind(docs, "Service"):
        assert svc["spec"].get("type", "ClusterIP") == "ClusterIP", svc["metadata"]["name"]


def test_network_policies(docs: list[dict[str, Any]]) -> None:
    nps = {d["metadata"]["name"]: d["spec"] for d in of_kind(docs, "NetworkPolicy")}
    deny = nps["shop-shopstream-default-deny"]
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny and "egress" not in deny
    allowed_ports = {p["port"] for rule in nps["shop-shopstream-egress"]["egress"] for p in rule["ports"]}
    assert 53 in allowed_ports and len(nps["shop-shopstream-egress"]["egress"]) == 4  # kafka, registry, redis, dns
    assert nps["shop-shopstream-connectors"]["ingress"][0]["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert nps["shop-shopstream-api"]["ingress"][0]["from"], "only the back office reaches the API"
    assert nps["shop-shopstream-admin"]["ingress"][0]["ports"] == [{"port": "admin", "protocol": "TCP"}]


# -- documentation ---------------------------------------------------------------------------------

#: values documented as one entry (free-form maps, or a block the README describes once).
LEAVES = ("extraEnv", "values", "mappings", "annotations", "labels", "nodeSelector", "resources", "pdb",
          "autoscaling", "securityContext", "podSecurityContext", "connectorsEnv")


def _value_paths(node: Any, prefix: str = "") -> Iterator[str]:
    leaf = prefix.endswith(LEAVES) or prefix.startswith("networkPolicy.egress.")
    if isinstance(node, dict) and node and not leaf:
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else key
            if prefix == "processors":
                path = "processors.<name>"
            yield from _value_paths(value, path)
    else:
        yield prefix


def test_chart_readme_lists_every_value() -> None:
    readme = (CHART / "README.md").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    missing = sorted({p for p in _value_paths(values) if f"`{p}`" not in readme})
    assert not missing, f"helm/shopstream/README.md does not list {missing}"
