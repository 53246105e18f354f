"""The one configuration object: every field is an environment variable with a documented default.

`Settings()` reads the environment; `load_settings()` turns a bad value into a `ConfigError`
whose message names the variable, so a process stops with a clear line instead of a traceback.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


#: Without SHOPSTREAM_ADMIN_PORT, the admin port of the connectors service and the read API is their
#: public port + this, so both fit on one host (`shopstream dev`).
ADMIN_PORT_OFFSET = 1000

#: Each worker's admin port (/metrics, /readyz) without --port or SHOPSTREAM_ADMIN_PORT is
#: SHOPSTREAM_WORKER_PORT + its offset: the one map the CLI, `shopstream dev` and the simulator read,
#: so every worker of one host has its own port.
WORKER_PORT_OFFSETS: dict[str, int] = {
    "orders": 0, "views": 1, "inventory": 2, "shop-sync": 3, "review": 4, "support": 5, "anomalies": 6,
    "catalog": 7, "shop-writer": 8,
}


class ConfigError(Exception):
    """A configuration value is invalid; the message names the environment variable."""


class _DocumentedVariablesOnly(PydanticBaseSettingsSource):
    """The environment source, minus values it found under a bare field name.

    `populate_by_name=True` (so code can write `Settings(topic_prefix=...)`) makes pydantic-settings
    also read `TOPIC_PREFIX`, `API_PORT`, `LOG_LEVEL`, ... from the environment: a generic variable
    meant for another program would configure shopstream, or stop it with an error naming the
    SHOPSTREAM_* variable nobody set. Only the documented variable (the alias) is read.
    """

    def __init__(self, settings_cls: type[BaseSettings], inner: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._inner = inner

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._inner().items() if k not in self.settings_cls.model_fields}


class Settings(BaseSettings):
    """shopstream configuration, read from the environment (see README, "Configuration")."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, hide_input_in_errors=True)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, _DocumentedVariablesOnly(settings_cls, env_settings),
                _DocumentedVariablesOnly(settings_cls, dotenv_settings), file_secret_settings)

    # Kafka
    kafka_bootstrap_servers: str = Field(
        "", validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS"),
        description="Kafka bootstrap servers; empty means `shopstream dev` starts the embedded broker.",
    )
    kafka_security_protocol: SecurityProtocol = Field(
        "PLAINTEXT", validation_alias=AliasChoices("KAFKA_SECURITY_PROTOCOL"))
    kafka_sasl_mechanism: SaslMechanism | None = Field(None, validation_alias=AliasChoices("KAFKA_SASL_MECHANISM"))
    kafka_sasl_username: str | None = Field(None, validation_alias=AliasChoices("KAFKA_SASL_USERNAME"))
    kafka_sasl_password: SecretStr | None = Field(None, validation_alias=AliasChoices("KAFKA_SASL_PASSWORD"))
    kafka_ssl_cafile: str | None = Field(None, validation_alias=AliasChoices("KAFKA_SSL_CAFILE"))
    kafka_debug: str = Field(
        "", pattern=r"^[a-z,]*$", validation_alias=AliasChoices("KAFKA_DEBUG"),
        description="librdkafka debug contexts for every Kafka client of the process (e.g. `cgrp,fetch,topic`): "
                    "a stalled consumer's protocol trace in its log. Empty: off.",
    )
    kafka_session_timeout_s: float = Field(
        10.0, gt=0, validation_alias=AliasChoices("KAFKA_SESSION_TIMEOUT_S"),
        description="Consumer-group session timeout; group joins take about half of it on Tansu.",
    )
    kafka_compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field(
        "none", validation_alias=AliasChoices("KAFKA_COMPRESSION"),
        description="Producer compression; every consumer of the output topics must have the codec "
                    "(aiokafka needs extra libraries for lz4/snappy/zstd).",
    )
    kafka_idempotence: bool = Field(
        True, validation_alias=AliasChoices("KAFKA_ENABLE_IDEMPOTENCE"),
        description="librdkafka's idempotent producer. Off only for a Tansu that restarts (the durable "
                    "embedded broker): Tansu stores a producer's sequence before the batch, so a retry of a "
                    "record in flight at its crash was answered DuplicateSequenceNumber and acknowledged "
                    "though it was never written. Off, the retry writes it again (a duplicate the idempotent "
                    "consumers absorb) and one request in flight per connection keeps the order.",
    )
    single_record_batches: bool = Field(
        False, validation_alias=AliasChoices("SHOPSTREAM_SINGLE_RECORD_BATCHES"),
        description="Send every record in its own batch, for Tansu: it answers ListOffsets(latest) with the "
                    "last batch's base offset + 1, so a changelog restore to it stops short of the tail (the "
                    "runner drains past it); and under load a Faust consumer was seen to never receive "
                    "the first record of a two-record batch at a partition's tail (2 of 8 crash-test "
                    "runs; 0 of 6 with this on). "
                    "`shopstream dev` turns it on for the embedded broker; real Kafka does not need it.",
    )
    kafka_fetch_max_wait_ms: int = Field(
        100, ge=1, le=5000, validation_alias=AliasChoices("KAFKA_FETCH_MAX_WAIT_MS"),
        description="Longest a consumer fetch waits for data. Tansu answers a fetch only when this expires "
                    "(measured: p50 delivery 144 ms at 500, 2.5 ms at 10), so it bounds end-to-end latency. "
                    "Tansu on S3 also spends it listing the partition's batches and answers empty once it is "
                    "spent: `dev --durable-broker` sets 2000 (dev/broker.py DURABLE_FETCH_MAX_WAIT_MS).",
    )
    kafka_producer_timeout_s: float = Field(
        30.0, gt=0, le=1200, validation_alias=AliasChoices("KAFKA_PRODUCER_TIMEOUT_S"),
        description="How long a worker's producer waits for the broker to confirm a record (librdkafka's "
                    "message.timeout.ms) before the record fails and the retry policy takes over.",
    )
    stall_after_s: float = Field(
        30.0, gt=0, le=3600, validation_alias=AliasChoices("SHOPSTREAM_STALL_AFTER_S"),
        description="After this long with polls returning nothing, a worker checks whether records wait past "
                    "its position (a stalled consumer: logged, counted in shopstream_runner_stalled_partitions).",
    )
    commit_interval_ms: int = Field(
        100, ge=0, le=60_000, validation_alias=AliasChoices("SHOPSTREAM_COMMIT_INTERVAL_MS"),
        description="How often a worker confirms its outputs, writes its changelog and commits its offsets "
                    "(Kafka Streams' commit.interval.ms). Outputs are produced as each poll is handled; "
                    "between commits a poll waits for nothing, and a key written many times is written to "
                    "the changelog once. A crash re-reads at most this much. 0: after every poll.",
    )
    retry_max_elapsed_s: float = Field(
        120.0, gt=0, le=3600, validation_alias=AliasChoices("SHOPSTREAM_RETRY_MAX_ELAPSED_S"),
        description="How long a worker retries a transient fault of one record in place before parking "
                    "it, and then a failing DLQ write before it stops without committing (exit 75).",
    )
    topic_prefix: str = Field(
        "", validation_alias=AliasChoices("SHOPSTREAM_TOPIC_PREFIX"),
        description="Prepended to every topic and group name (tests and shared clusters).",
    )
    topology_overlay: str = Field(
        "", validation_alias=AliasChoices("SHOPSTREAM_TOPOLOGY_OVERLAY"),
        description="Overlay file merged over topology/topics.yaml by every process (topics apply/check, "
                    "workers' table partitions and changelogs, dlq tools), e.g. the shipped "
                    "topology/overlays/production.yaml; empty: the base topology (dev values).",
    )

    # Schema registry
    schema_registry_url: str = Field(
        "", validation_alias=AliasChoices("SCHEMA_REGISTRY_URL"),
        description="Confluent-compatible registry; empty means `shopstream dev` starts the embedded one.",
    )
    registry_port: int = Field(8085, ge=1, le=65535, validation_alias=AliasChoices("SHOPSTREAM_REGISTRY_PORT"))
    registry_storage: str = Field(
        ".shopstream/registry.json", validation_alias=AliasChoices("SHOPSTREAM_REGISTRY_STORAGE"),
        description="File where the embedded registry persists its schemas.",
    )

    # Redis
    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias=AliasChoices("REDIS_URL"))
    redis_key_prefix: str = Field("shopstream:", validation_alias=AliasChoices("SHOPSTREAM_REDIS_PREFIX"))
    webhook_dedupe_ttl_s: int = Field(
        7 * 24 * 3600, gt=0, validation_alias=AliasChoices("SHOPSTREAM_WEBHOOK_DEDUPE_TTL_S"),
        description="How long a delivered webhook id is remembered (Shopify retries for 48 h).",
    )

    # HTTP faces
    connectors_port: int = Field(8080, ge=1, le=65535, validation_alias=AliasChoices("SHOPSTREAM_CONNECTORS_PORT"))
    api_port: int = Field(8081, ge=1, le=65535, validation_alias=AliasChoices("SHOPSTREAM_API_PORT"))
    worker_web_port: int = Field(
        6066, ge=1, le=65535, validation_alias=AliasChoices("SHOPSTREAM_WORKER_PORT"),
        description="Base port of worker web servers (/metrics); each worker adds its index.",
    )
    http_host: str = Field("127.0.0.1", validation_alias=AliasChoices("SHOPSTREAM_HTTP_HOST"))
    admin_port: int = Field(
        0, ge=0, le=65535, validation_alias=AliasChoices("SHOPSTREAM_ADMIN_PORT"),
        description="Port of /metrics and /readyz of the service this process runs (one per container); 0: the "
                    "connectors service and the read API use their public port + 1000 (9080, 9081), workers "
                    "their --port. Never the public port: it carries nothing internal.",
    )
    registry_token: SecretStr = Field(
        SecretStr(""), validation_alias=AliasChoices("SHOPSTREAM_REGISTRY_TOKEN"),
        description="Bearer token the embedded registry requires for writes (PUT/POST config, DELETE); empty: "
                    "it refuses every write but schema registration from loopback.",
    )
    registry_allow_remote: bool = Field(
        False, validation_alias=AliasChoices("SHOPSTREAM_REGISTRY_ALLOW_REMOTE"),
        description="Let the embedded registry bind a non-loopback address (it is a dev tool).",
    )

    # Webhook secrets: SecretStr keeps them out of reprs and logs.
    shopify_secret: SecretStr = Field(SecretStr(""), validation_alias=AliasChoices("SHOPSTREAM_SHOPIFY_SECRET"))
    stripe_secret: SecretStr = Field(SecretStr(""), validation_alias=AliasChoices("SHOPSTREAM_STRIPE_SECRET"))
    woocommerce_secret: SecretStr = Field(
        SecretStr(""), validation_alias=AliasChoices("SHOPSTREAM_WOOCOMMERCE_SECRET"))

    carrier_secret: SecretStr = Field(SecretStr(""), validation_alias=AliasChoices("SHOPSTREAM_CARRIER_SECRET"))
    returns_secret: SecretStr = Field(SecretStr(""), validation_alias=AliasChoices("SHOPSTREAM_RETURNS_SECRET"))
    erp_secret: SecretStr = Field(SecretStr(""), validation_alias=AliasChoices("SHOPSTREAM_ERP_SECRET"))
    # PIM push (`POST /webhooks/pim`): Akeneo's Events API secret and the generic signed JSON's secret.
    akeneo_secret: SecretStr = Field(SecretStr(""), validation_alias=AliasChoices("SHOPSTREAM_AKENEO_SECRET"))
    pim_secret: SecretStr = Field(SecretStr(""), validation_alias=AliasChoices("SHOPSTREAM_PIM_SECRET"))
    # Helpdesks (issue 15): Zendesk's signing secret, Freshdesk's Basic `user:password`, Gorgias' header
    # token, and the generic helpdesk source's HMAC secret.
    zendesk_secret: SecretStr = Field(SecretStr(""), validation_alias=AliasChoices("SHOPSTREAM_ZENDESK_SECRET"))
    freshdesk_secret: SecretStr = Field(SecretStr(""), validation_alias=AliasChoices("SHOPSTREAM_FRESHDESK_SECRET"))
    gorgias_secret: SecretStr = Field(SecretStr(""), validation_alias=AliasChoices("SHOPSTREAM_GORGIAS_SECRET"))
    helpdesk_secret: SecretStr = Field(SecretStr(""), validation_alias=AliasChoices("SHOPSTREAM_HELPDESK_SECRET"))

    # The shop writer (`worker shop-writer`): its file, and the shop's Admin API credentials (Secrets).
    shop_writer_config: str = Field(
        "", validation_alias=AliasChoices("SHOPSTREAM_SHOP_WRITER_CONFIG"),
        description="The shop writer's file (platform, shop URL, location, limits, retries, SKU -> shop ids); "
                    "empty: the shipped topology/shop_writer.yaml.",
    )
    shopify_access_token: SecretStr = Field(
        SecretStr(""), validation_alias=AliasChoices("SHOPSTREAM_SHOPIFY_ACCESS_TOKEN"),
        description="Admin API access token of the Shopify app (scopes write_inventory, write_products, "
                    "write_orders) for `worker shop-writer`.",
    )
    woocommerce_consumer_key: SecretStr = Field(
        SecretStr(""), validation_alias=AliasChoices("SHOPSTREAM_WOOCOMMERCE_CONSUMER_KEY"),
        description="WooCommerce REST consumer key (read/write) for `worker shop-writer` on platform woocommerce.",
    )
    woocommerce_consumer_secret: SecretStr = Field(
        SecretStr(""), validation_alias=AliasChoices("SHOPSTREAM_WOOCOMMERCE_CONSUMER_SECRET"),
        description="WooCommerce REST consumer secret (not the webhook secret SHOPSTREAM_WOOCOMMERCE_SECRET).",
    )

    # Hostile input: how much a sender's clock may be ahead, how old a signature may be.
    max_future_skew_s: float = Field(
        600.0, ge=0, le=86_400, validation_alias=AliasChoices("SHOPSTREAM_MAX_FUTURE_SKEW_S"),
        description="A source time further ahead of our clock than this is refused (422, exit 2 for ingest): "
                    "a broken clock would otherwise make every later real update look stale.",
    )
    signature_tolerance_s: int = Field(
        300, ge=1, le=86_400, validation_alias=AliasChoices("SHOPSTREAM_SIGNATURE_TOLERANCE_S"),
        description="How far a timestamped signature (Stripe, X-Shopstream-Signature t=…) may be from now.",
    )
    signature_accept_legacy: bool = Field(
        False, validation_alias=AliasChoices("SHOPSTREAM_SIGNATURE_ACCEPT_LEGACY"),
        description="Also accept the untimed X-Shopstream-Signature (bare hex HMAC of the body) for a "
                    "migration window; it can be replayed for ever, so turn it off once senders are updated.",
    )

    # Workers
    state_dir: str = Field(".shopstream", validation_alias=AliasChoices("SHOPSTREAM_STATE_DIR"))
    # API bearer tokens (shopstream.auth): name, roles, sha256 per token; empty: every API request is refused.
    api_tokens_file: str = Field("", validation_alias=AliasChoices("SHOPSTREAM_API_TOKENS_FILE"))
    dev_log_dir: str = Field(
        "", validation_alias=AliasChoices("SHOPSTREAM_DEV_LOG_DIR"),
        description="`shopstream dev`: write each service's output to DIR/<service>.log instead of the "
                    "terminal (tests and benchmarks set it, so a stalled service is found by its own log).",
    )
    mappings_dir: str = Field(
        "", validation_alias=AliasChoices("SHOPSTREAM_MAPPINGS_DIR"),
        description="Extra folder of status mapping files (<source>.yaml), searched before the shipped ones.",
    )
    carrier_mapping: str = Field(
        "", validation_alias=AliasChoices("SHOPSTREAM_CARRIER_MAPPING"),
        description="Extra carrier status table (the shape of topology/carrier.yaml) laid over the shipped one, "
                    "status by status: add a status a carrier started sending, then `dlq redrive` what was refused.",
    )
    orders_policy: str = Field(
        "", validation_alias=AliasChoices("SHOPSTREAM_ORDERS_POLICY"),
        description="Orders policy file (parking bound and expiry, anomaly severities); empty: the shipped "
                    "topology/orders_policy.yaml.",
    )
    review_rules: str = Field(
        "", validation_alias=AliasChoices("SHOPSTREAM_REVIEW_RULES"),
        description="Review rules file of `worker review` (rates and lists relative to it); empty: the shipped "
                    "topology/rules/review.yaml.",
    )
    anomaly_rules: str = Field(
        "", validation_alias=AliasChoices("SHOPSTREAM_ANOMALY_RULES"),
        description="Anomaly detectors and thresholds of `worker anomalies`; empty: the shipped "
                    "topology/rules/anomalies.yaml.",
    )
    returns_policy: str = Field(
        "", validation_alias=AliasChoices("SHOPSTREAM_RETURNS_POLICY"),
        description="Returns policy file (return window, non-returnable SKUs, refund per condition grade); "
                    "empty: the shipped topology/returns_policy.yaml.",
    )
    catalog_rules: str = Field(
        "", validation_alias=AliasChoices("SHOPSTREAM_CATALOG_RULES"),
        description="Catalog checks and price policy of `worker catalog`; empty: the shipped "
                    "topology/rules/catalog.yaml.",
    )
    catalog_mastership: str = Field(
        "", validation_alias=AliasChoices("SHOPSTREAM_CATALOG_MASTERSHIP"),
        description="Field mastership per source of `worker catalog`; empty: the shipped topology/catalog.yaml.",
    )
    catalog_tick_s: float = Field(
        1.0, gt=0, le=3600, validation_alias=AliasChoices("SHOPSTREAM_CATALOG_TICK_S"),
        description="How often `worker catalog` starts and ends promotions; a promotion moves late by at most "
                    "this much.",
    )
    orders_sweep_interval_s: float = Field(
        60.0, gt=0, le=86_400, validation_alias=AliasChoices("SHOPSTREAM_ORDERS_SWEEP_INTERVAL_S"),
        description="How often `worker orders` sends expired parked events and undecidable returns to "
                    "review; an expiry is late by at most this much.",
    )
    shop_sync_window_ms: int = Field(
        2000, ge=0, le=600_000, validation_alias=AliasChoices("SHOPSTREAM_SHOP_SYNC_WINDOW_MS"),
        description="Coalescing window of `worker shop-sync`: the first stock change of a SKU opens it, the "
                    "latest value when it ends becomes one SyncShopStock. 2 s keeps the shop at most ~2 s behind "
                    "ATP (well under a shopper's page-to-checkout time) while a hot SKU costs at most one shop "
                    "API call per 2 s however many orders hit it; 0 sends every change of the visible figure.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias=AliasChoices("SHOPSTREAM_LOG_LEVEL"))

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _bootstrap_shape(cls, v: str) -> str:
        for part in filter(None, (p.strip() for p in v.split(","))):
            host, sep, port = part.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port], got {part!r}")
        return v.strip()

    @field_validator("schema_registry_url")
    @classmethod
    def _registry_shape(cls, v: str) -> str:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")

    @field_validator("redis_url")
    @classmethod
    def _redis_shape(cls, v: str) -> str:
        if not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return v

    def worker_port(self, worker: str) -> int:
        """The default admin port of `worker` (a key of WORKER_PORT_OFFSETS)."""
        return self.worker_web_port + WORKER_PORT_OFFSETS[worker]

    @property
    def connectors_admin_port(self) -> int:
        """The connectors service's admin port (/metrics, /readyz)."""
        return self.admin_port or self.connectors_port + ADMIN_PORT_OFFSET

    @property
    def api_admin_port(self) -> int:
        """The read API's admin port (/metrics, /readyz)."""
        return self.admin_port or self.api_port + ADMIN_PORT_OFFSET

    def topic(self, name: str) -> str:
        """The physical topic name for a logical topology name."""
        return f"{self.topic_prefix}{name}"

    def kafka_client_config(self) -> dict[str, Any]:
        """librdkafka settings shared by every confluent-kafka client (bootstrap + security)."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.kafka_bootstrap_servers,
            "security.protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            conf["sasl.mechanism"] = self.kafka_sasl_mechanism
            conf["sasl.username"] = self.kafka_sasl_username or ""
            conf["sasl.password"] = self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else ""
        if self.kafka_ssl_cafile:
            conf["ssl.ca.location"] = self.kafka_ssl_cafile
        if self.kafka_debug:
            conf["debug"] = self.kafka_debug
        return conf


def secret_list(secret: SecretStr) -> list[str]:
    """The secrets of a comma-separated setting (new first, then the ones being rotated out)."""
    return [part.strip() for part in secret.get_secret_value().split(",") if part.strip()]


#: The webhook secrets every service checks before it binds a non-loopback address.
WEBHOOK_SECRET_FIELDS = ("shopify_secret", "stripe_secret", "woocommerce_secret", "carrier_secret",
                         "returns_secret", "erp_secret")
#: Optional webhook secrets (the helpdesks, the PIM push): empty is allowed (the endpoint answers 401), weak
#: is not. Freshdesk's is `user:password` of an account the helpdesk owner chose and Akeneo's is generated
#: by Akeneo for the event subscription: for those two only known defaults are refused, not the length.
OPTIONAL_WEBHOOK_SECRET_FIELDS = ("zendesk_secret", "gorgias_secret", "helpdesk_secret", "freshdesk_secret",
                                  "pim_secret", "akeneo_secret")
_CHOSEN_ELSEWHERE = frozenset({"freshdesk_secret", "akeneo_secret"})
#: Values that appear in our docs, compose file or dev stack: known to everyone.
KNOWN_SECRETS = frozenset({"change-me", "changeme", "secret", "dev-secret", "shopstream-dev-secret"})
MIN_SECRET_BYTES = 32


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach."""
    return host in ("localhost", "::1") or host.startswith("127.")


def exposure_problems(settings: Settings, host: str | None = None) -> list[str]:
    """Why the webhook secrets are unfit for a non-loopback bind (empty when fine or bound to loopback)."""
    if is_loopback(host if host is not None else settings.http_host):
        return []
    found = []
    for field in (*WEBHOOK_SECRET_FIELDS, *OPTIONAL_WEBHOOK_SECRET_FIELDS):
        values = secret_list(getattr(settings, field))
        if not values and field in WEBHOOK_SECRET_FIELDS:
            found.append(f"{env_name(field)} is empty")
        for value in values:
            if value in KNOWN_SECRETS or value.startswith("dev-"):
                found.append(f"{env_name(field)} is a known default")
            elif len(value.encode()) < MIN_SECRET_BYTES and field not in _CHOSEN_ELSEWHERE:
                found.append(f"{env_name(field)} is shorter than {MIN_SECRET_BYTES} bytes")
    return found


def require_safe_exposure(settings: Settings, host: str | None = None) -> None:
    """Refuse to serve on a non-loopback address with an empty, known or short webhook secret."""
    found = exposure_problems(settings, host)
    if found:
        raise ConfigError(f"refusing to listen on {host or settings.http_host}: " + "; ".join(found))


def env_name(field: str) -> str:
    """The environment variable that sets `field`."""
    alias = Settings.model_fields[field].validation_alias
    assert isinstance(alias, AliasChoices)
    return str(alias.choices[0])


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment; a bad value raises ConfigError naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            # Each field has exactly one variable name (no prefix magic) so README and code agree.
            field = str(err["loc"][0]) if err["loc"] else "?"
            var = env_name(field) if field in Settings.model_fields else field
            lines.append(f"{var}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return load_settings()
