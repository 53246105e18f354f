"""Settings: documented defaults, one environment variable per field, errors that name the variable,
secrets that never leak, and the librdkafka config derived from it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from shopstream.config import ConfigError, Settings, env_name, load_settings

#: field -> (value put in its environment variable, the value the field must then hold).
#: Every value differs from the default, so reading the variable is observable.
ENV_SAMPLES: dict[str, tuple[str, Any]] = {
    "kafka_bootstrap_servers": ("k1:9092,k2:9093", "k1:9092,k2:9093"),
    "kafka_security_protocol": ("SASL_SSL", "SASL_SSL"),
    "kafka_sasl_mechanism": ("SCRAM-SHA-512", "SCRAM-SHA-512"),
    "kafka_sasl_username": ("svc-shop", "svc-shop"),
    "kafka_sasl_password": ("sasl-pw-123", SecretStr("sasl-pw-123")),
    "kafka_ssl_cafile": ("/etc/ca.pem", "/etc/ca.pem"),
    "kafka_session_timeout_s": ("6.5", 6.5),
    "kafka_compression": ("zstd", "zstd"),
    "kafka_idempotence": ("false", False),
    "single_record_batches": ("true", True),
    "admin_port": ("9464", 9464),
    "carrier_mapping": ("/etc/carrier.yaml", "/etc/carrier.yaml"),
    "registry_token": ("reg-token", SecretStr("reg-token")),
    "registry_allow_remote": ("true", True),
    "max_future_skew_s": ("60", 60.0),
    "signature_tolerance_s": ("120", 120),
    "signature_accept_legacy": ("true", True),
    "carrier_secret": ("c4rr13r", SecretStr("c4rr13r")),
    "returns_secret": ("r3turn5", SecretStr("r3turn5")),
    "erp_secret": ("3rp", SecretStr("3rp")),
    "akeneo_secret": ("4k3n30", SecretStr("4k3n30")),
    "pim_secret": ("p1m", SecretStr("p1m")),
    "zendesk_secret": ("zd", SecretStr("zd")),
    "freshdesk_secret": ("agent:pw", SecretStr("agent:pw")),
    "gorgias_secret": ("gg", SecretStr("gg")),
    "helpdesk_secret": ("hd", SecretStr("hd")),
    "shop_writer_config": ("/etc/shopstream/shop_writer.yaml", "/etc/shopstream/shop_writer.yaml"),
    "shopify_access_token": ("shpat_x", SecretStr("shpat_x")),
    "woocommerce_consumer_key": ("ck_x", SecretStr("ck_x")),
    "woocommerce_consumer_secret": ("cs_x", SecretStr("cs_x")),
    "kafka_fetch_max_wait_ms": ("50", 50),
    "kafka_producer_timeout_s": ("5", 5.0),
    "retry_max_elapsed_s": ("7.5", 7.5),
    "stall_after_s": ("12", 12.0),
    "commit_interval_ms": ("250", 250),
    "kafka_debug": ("cgrp,fetch", "cgrp,fetch"),
    "mappings_dir": ("/etc/shopstream/mappings", "/etc/shopstream/mappings"),
    "topic_prefix": ("staging.", "staging."),
    "topology_overlay": ("/etc/shopstream/production.yaml", "/etc/shopstream/production.yaml"),
    "schema_registry_url": ("https://sr.example:8081/", "https://sr.example:8081"),
    "registry_port": ("18085", 18085),
    "registry_storage": ("/var/lib/sr.json", "/var/lib/sr.json"),
    "redis_url": ("rediss://cache:6380/2", "rediss://cache:6380/2"),
    "redis_key_prefix": ("shop1:", "shop1:"),
    "webhook_dedupe_ttl_s": ("3600", 3600),
    "connectors_port": ("18080", 18080),
    "api_port": ("18081", 18081),
    "worker_web_port": ("16066", 16066),
    "http_host": ("0.0.0.0", "0.0.0.0"),
    "shopify_secret": ("shpss_abc", SecretStr("shpss_abc")),
    "stripe_secret": ("whsec_abc", SecretStr("whsec_abc")),
    "woocommerce_secret": ("wc_abc", SecretStr("wc_abc")),
    "state_dir": ("/data/state", "/data/state"),
    "api_tokens_file": ("/etc/shopstream/tokens.yaml", "/etc/shopstream/tokens.yaml"),
    "dev_log_dir": ("/tmp/dev-logs", "/tmp/dev-logs"),
    "log_level": ("DEBUG", "DEBUG"),
    "shop_sync_window_ms": ("750", 750),
    "orders_policy": ("/etc/shopstream/orders_policy.yaml", "/etc/shopstream/orders_policy.yaml"),
    "review_rules": ("/etc/shopstream/review.yaml", "/etc/shopstream/review.yaml"),
    "anomaly_rules": ("/etc/shopstream/anomalies.yaml", "/etc/shopstream/anomalies.yaml"),
    "returns_policy": ("/etc/shopstream/returns_policy.yaml", "/etc/shopstream/returns_policy.yaml"),
    "orders_sweep_interval_s": ("15", 15.0),
    "catalog_rules": ("/etc/shopstream/catalog.yaml", "/etc/shopstream/catalog.yaml"),
    "catalog_mastership": ("/etc/shopstream/mastership.yaml", "/etc/shopstream/mastership.yaml"),
    "catalog_tick_s": ("2.5", 2.5),
}

SECRETS = {"kafka_sasl_password": "sasl-pw-s3cr3t", "shopify_secret": "shpss-s3cr3t",
           "stripe_secret": "whsec-s3cr3t", "woocommerce_secret": "wc-s3cr3t",
           "carrier_secret": "carrier-s3cr3t", "returns_secret": "returns-s3cr3t", "erp_secret": "erp-s3cr3t",
           "akeneo_secret": "akeneo-s3cr3t", "pim_secret": "pim-s3cr3t"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No shopstream variable (nor a field-named one) leaks in from the test runner's environment."""
    for field in Settings.model_fields:
        monkeypatch.delenv(env_name(field), raising=False)
        monkeypatch.delenv(field.upper(), raising=False)
        monkeypatch.delenv(field, raising=False)
    yield


def test_defaults() -> None:
    s = load_settings()
    assert s.kafka_bootstrap_servers == ""
    assert s.kafka_security_protocol == "PLAINTEXT"
    assert s.kafka_sasl_mechanism is None and s.kafka_sasl_username is None and s.kafka_sasl_password is None
    assert s.kafka_session_timeout_s == 10.0
    assert s.topic_prefix == ""
    assert s.schema_registry_url == ""
    assert s.registry_port == 8085
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.redis_key_prefix == "shopstream:"
    assert s.webhook_dedupe_ttl_s == 7 * 24 * 3600
    assert (s.connectors_port, s.api_port, s.worker_web_port) == (8080, 8081, 6066)
    assert s.http_host == "127.0.0.1"
    assert s.shopify_secret.get_secret_value() == ""
    assert s.log_level == "INFO"
    assert s.topic("shop.orders") == "shop.orders"


def test_samples_cover_every_field() -> None:
    # A new setting must get an entry above, so its variable is tested too.
    assert set(ENV_SAMPLES) == set(Settings.model_fields)


@pytest.mark.parametrize("field", sorted(ENV_SAMPLES))
def test_every_field_reads_its_variable(field: str, monkeypatch: pytest.MonkeyPatch) -> None:
    raw, expected = ENV_SAMPLES[field]
    default = getattr(load_settings(), field)
    monkeypatch.setenv(env_name(field), raw)
    value = getattr(load_settings(), field)
    assert value == expected
    assert value != default


@pytest.mark.parametrize("field", ["topic_prefix", "api_port", "log_level", "http_host", "shopify_secret"])
def test_only_the_documented_variable_is_read(field: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A generic LOG_LEVEL / API_PORT in a container must not configure shopstream (or crash it)."""
    assert env_name(field) != field.upper()
    default = getattr(load_settings(), field)
    monkeypatch.setenv(field.upper(), "0")  # invalid for the int/Literal fields, a value for the others
    assert getattr(load_settings(), field) == default


def test_documented_variable_wins_and_kwargs_win_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPSTREAM_TOPIC_PREFIX", "from-env.")
    assert load_settings().topic_prefix == "from-env."
    assert load_settings(topic_prefix="kw.").topic_prefix == "kw."  # by field name (populate_by_name)
    assert load_settings(SHOPSTREAM_TOPIC_PREFIX="alias.").topic_prefix == "alias."


def test_topic_applies_prefix() -> None:
    assert load_settings(topic_prefix="t1.").topic("payments") == "t1.payments"


@pytest.mark.parametrize(("var", "raw"), [
    ("KAFKA_BOOTSTRAP_SERVERS", "bad"),
    ("KAFKA_BOOTSTRAP_SERVERS", "host:port"),
    ("SHOPSTREAM_API_PORT", "0"),
    ("SHOPSTREAM_CONNECTORS_PORT", "70000"),
    ("REDIS_URL", "http://x"),
    ("SCHEMA_REGISTRY_URL", "localhost:8081"),
    ("KAFKA_SESSION_TIMEOUT_S", "0"),
    ("KAFKA_SECURITY_PROTOCOL", "TLS"),
    ("SHOPSTREAM_LOG_LEVEL", "verbose"),
    ("KAFKA_COMPRESSION", "brotli"),
])
def test_bad_env_value_raises_config_error_naming_the_variable(var: str, raw: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(var, raw)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith("invalid configuration: ")
    assert f"{var}:" in message
    # Only the bad variable is named.
    named = [n for n in (env_name(f) for f in Settings.model_fields) if f"{n}:" in message]
    assert named == [var]


def test_bad_kwarg_is_reported_under_its_variable_name() -> None:
    with pytest.raises(ConfigError, match="SHOPSTREAM_API_PORT:"):
        load_settings(api_port=0)
    with pytest.raises(ConfigError, match="KAFKA_BOOTSTRAP_SERVERS:"):
        load_settings(kafka_bootstrap_servers="bad")


def test_several_bad_values_are_all_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "http://x")
    monkeypatch.setenv("SHOPSTREAM_API_PORT", "0")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "REDIS_URL:" in str(info.value) and "SHOPSTREAM_API_PORT:" in str(info.value)


def test_error_message_does_not_echo_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "http://:pw-in-url-s3cr3t@cache:6379")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "pw-in-url-s3cr3t" not in str(info.value)


def test_values_are_normalised() -> None:
    s = load_settings(kafka_bootstrap_servers=" a:1, b:2 ", schema_registry_url="http://sr:8081///")
    assert s.kafka_bootstrap_servers == "a:1, b:2"
    assert s.schema_registry_url == "http://sr:8081"


def _secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for field, value in SECRETS.items():
        monkeypatch.setenv(env_name(field), value)
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "svc")


def test_secrets_never_appear_in_repr_str_or_dumps(monkeypatch: pytest.MonkeyPatch) -> None:
    _secret_env(monkeypatch)
    s = load_settings()
    assert s.shopify_secret.get_secret_value() == SECRETS["shopify_secret"]  # it was read...
    renderings = [repr(s), str(s), s.model_dump_json(), str(s.model_dump()), f"{s}", f"{s!r}"]
    for text in renderings:
        for secret in SECRETS.values():
            assert secret not in text  # ...and is never shown
    assert "**********" in s.model_dump_json()


def test_kafka_client_config_plaintext() -> None:
    conf = load_settings(kafka_bootstrap_servers="b:9092").kafka_client_config()
    assert conf == {"bootstrap.servers": "b:9092", "security.protocol": "PLAINTEXT"}


def test_kafka_client_config_passes_sasl_and_ssl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "b1:9096,b2:9096")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "svc-shop")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "pw-123")
    monkeypatch.setenv("KAFKA_SSL_CAFILE", "/etc/kafka/ca.pem")
    conf = load_settings().kafka_client_config()
    assert conf == {
        "bootstrap.servers": "b1:9096,b2:9096",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "svc-shop",
        "sasl.password": "pw-123",  # librdkafka needs the real value
        "ssl.ca.location": "/etc/kafka/ca.pem",
    }


def test_kafka_client_config_ssl_without_sasl() -> None:
    conf = load_settings(kafka_security_protocol="SSL", kafka_ssl_cafile="/ca.pem").kafka_client_config()
    assert conf["security.protocol"] == "SSL" and conf["ssl.ca.location"] == "/ca.pem"
    assert not any(k.startswith("sasl.") for k in conf)
