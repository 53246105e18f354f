"""`shopstream worker`: one table of workers, one map of their admin ports, exit 2 on a bad data file."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopstream import cli
from shopstream.config import WORKER_PORT_OFFSETS, Settings


def test_every_worker_has_its_own_default_admin_port() -> None:
    settings = Settings(worker_web_port=7000)
    assert set(cli._WORKERS) == set(WORKER_PORT_OFFSETS)
    ports = [settings.worker_port(w) for w in cli._WORKERS]
    assert len(set(ports)) == len(ports)
    assert settings.worker_port("orders") == 7000 and settings.worker_port("inventory") == 7002


def test_every_entry_and_configuration_error_resolves_to_what_except_accepts() -> None:
    for module, entry, _, errors in cli._WORKERS.values():
        assert callable(cli._attribute(f"{module}:{entry}"))
        classes = cli._config_errors(errors)
        assert all(isinstance(c, type) and issubclass(c, Exception) for c in classes), errors
        for cls in classes:  # what cmd_worker does with them: match, and let anything else through
            with pytest.raises(KeyError):
                try:
                    raise KeyError("not a configuration error")
                except classes:
                    pass
            try:
                raise cls.__new__(cls)
            except classes:
                pass


def test_a_broken_rules_file_exits_2_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("version: [\n", encoding="utf-8")
    # never contacted: the worker refuses to start before it connects
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SHOPSTREAM_REVIEW_RULES", str(bad))
    assert cli.main(["worker", "review"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("shopstream worker review: ") and f"{bad}:2: not valid YAML" in err
