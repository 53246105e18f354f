"""What may be reached from outside, decided without I/O: weak secrets on a public bind, the compose file,
Faust's web endpoints, and the readiness cache."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from shopstream.config import (
    WEBHOOK_SECRET_FIELDS,
    ConfigError,
    Settings,
    exposure_problems,
    require_safe_exposure,
    secret_list,
)
from shopstream.health import ReadinessProbe

STRONG = "k" * 32


def strong_settings(**over: object) -> Settings:
    values: dict[str, object] = {field: SecretStr(STRONG) for field in WEBHOOK_SECRET_FIELDS}
    values.update(over)
    return Settings(**values)  # type: ignore[arg-type]


def test_loopback_accepts_any_secret() -> None:
    assert exposure_problems(Settings(http_host="127.0.0.1")) == []
    require_safe_exposure(Settings(http_host="::1"))


@pytest.mark.parametrize(("secret", "problem"), [
    ("", "is empty"), ("change-me", "is a known default"), ("shopstream-dev-secret", "is a known default"),
    ("short-secret", "is shorter than 32 bytes"), (f"{STRONG},old", "is shorter than 32 bytes"),
])
def test_a_public_bind_needs_strong_secrets(secret: str, problem: str) -> None:
    settings = strong_settings(http_host="0.0.0.0", shopify_secret=SecretStr(secret))
    with pytest.raises(ConfigError, match=f"SHOPSTREAM_SHOPIFY_SECRET {problem}"):
        require_safe_exposure(settings)
    require_safe_exposure(strong_settings(http_host="0.0.0.0"))


def test_secrets_rotate_as_lists() -> None:
    assert secret_list(SecretStr(" new-one , old-one ,")) == ["new-one", "old-one"]


def test_compose_requires_every_secret_and_publishes_on_loopback_only(repo_root: Path) -> None:
    text = (repo_root / "docker-compose.yml").read_text()
    compose = yaml.safe_load(text)
    # Only the connectors service holds webhook secrets (and refuses weak ones on a non-loopback bind).
    env = compose["services"]["connectors"]["environment"]
    for field in WEBHOOK_SECRET_FIELDS:
        var = f"SHOPSTREAM_{field.removesuffix('_secret').upper()}_SECRET"
        assert env[var].startswith(f"${{{var}:?"), var  # compose refuses to start without it
    assert "change-me" not in text
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_readiness_is_cached_and_shares_one_check() -> None:
    pings = 0
    now = [0.0]

    async def ping() -> bool:
        nonlocal pings
        pings += 1
        return True

    probe = ReadinessProbe(Settings(kafka_bootstrap_servers=""), ping, cache_s=3.0, clock=lambda: now[0])

    async def scenario() -> None:
        first = await probe.checks()
        assert first == {"redis": "ok", "kafka": "error: KAFKA_BOOTSTRAP_SERVERS is not set"}
        await asyncio.gather(*(probe.checks() for _ in range(20)))
        assert pings == 1
        now[0] = 3.5
        await probe.checks()
        assert pings == 2

    asyncio.run(scenario())


def test_admin_ports_default_to_public_plus_1000_or_one_named_port() -> None:
    default = Settings()
    assert (default.connectors_admin_port, default.api_admin_port) == (9080, 9081)
    container = Settings(admin_port=9464)
    assert container.connectors_admin_port == container.api_admin_port == 9464


def test_helpdesk_secrets_may_be_empty_but_not_weak() -> None:
    require_safe_exposure(strong_settings(http_host="0.0.0.0"))  # no helpdesk configured: fine
    with pytest.raises(ConfigError, match="SHOPSTREAM_ZENDESK_SECRET is shorter than 32 bytes"):
        require_safe_exposure(strong_settings(http_host="0.0.0.0", zendesk_secret=SecretStr("short")))
    with pytest.raises(ConfigError, match="SHOPSTREAM_GORGIAS_SECRET is a known default"):
        require_safe_exposure(strong_settings(http_host="0.0.0.0", gorgias_secret=SecretStr("change-me")))
    # Freshdesk's Basic credentials are an account's, not ours to size.
    require_safe_exposure(strong_settings(http_host="0.0.0.0", freshdesk_secret=SecretStr("agent:pw")))


def test_the_pim_push_secrets_may_be_empty_but_not_weak() -> None:
    require_safe_exposure(strong_settings(http_host="0.0.0.0"))  # no PIM push configured: fine (401)
    with pytest.raises(ConfigError, match="SHOPSTREAM_PIM_SECRET is shorter than 32 bytes"):
        require_safe_exposure(strong_settings(http_host="0.0.0.0", pim_secret=SecretStr("pim-s3cr3t")))
    with pytest.raises(ConfigError, match="SHOPSTREAM_PIM_SECRET is a known default"):
        require_safe_exposure(strong_settings(http_host="0.0.0.0", pim_secret=SecretStr("dev-pim")))
    with pytest.raises(ConfigError, match="SHOPSTREAM_AKENEO_SECRET is a known default"):
        require_safe_exposure(strong_settings(http_host="0.0.0.0", akeneo_secret=SecretStr("change-me")))
    # Akeneo generates its event subscription secret: not ours to size.
    require_safe_exposure(strong_settings(http_host="0.0.0.0", akeneo_secret=SecretStr("4k3n30-generated")))
    require_safe_exposure(strong_settings(http_host="0.0.0.0", pim_secret=SecretStr(STRONG)))
