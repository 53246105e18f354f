"""The inventory policy file: the shipped one loads, per-SKU reorder points, invalid files are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopstream.processors.inventory.config import InventoryConfigError, load_inventory_config


def test_shipped_file_loads() -> None:
    config = load_inventory_config()
    policy = config.policy("ANY-SKU")
    assert "default" in policy.online_locations
    assert policy.include_incoming is False


def test_policy_per_sku(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text("online_locations: [berlin, hamburg]\ninclude_incoming: true\n"
                    "reorder_points: {default: 5, skus: {A: 20, B: null}}\n")
    config = load_inventory_config(path)
    assert config.policy("A").reorder_point == 20
    assert config.policy("B").reorder_point is None
    assert config.policy("C").reorder_point == 5
    assert config.policy("C").online_locations == frozenset({"berlin", "hamburg"})
    assert config.policy("C").include_incoming is True


@pytest.mark.parametrize("text", [
    "online_locations: []\n",
    "online_locations: [default]\nreorder_points: {default: -1}\n",
    "online_locations: [default]\nunknown: 1\n",
    "include_incoming: false\n",
    "online_locations: [default\n",
])
def test_invalid_files_are_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    with pytest.raises(InventoryConfigError, match=r"inventory\.yaml"):
        load_inventory_config(path)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InventoryConfigError):
        load_inventory_config(tmp_path / "nope.yaml")


def test_shipped_keep_outlasts_every_redelivery_and_replay_of_reservations() -> None:
    """Forgetting a finished reservation is safe only when no record of it can still arrive."""
    from shopstream.topology import load_topology

    keep = load_inventory_config().keep_finished_reservations
    assert keep is not None
    topics = {t.name: t for t in load_topology().topics}
    for name in ("inventory.reservations", "inventory.reservations.dlq"):
        retention_ms = topics[name].retention_ms
        assert retention_ms != -1, f"{name} keeps records forever: nothing may be forgotten"
        assert keep.total_seconds() * 1000 > retention_ms, f"{name} keeps records longer than {keep}"


@pytest.mark.parametrize("value", ["0s", "-5d", "soon"])
def test_keep_finished_reservations_must_be_a_positive_duration(tmp_path: Path, value: str) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(f"online_locations: [default]\nkeep_finished_reservations: {value}\n")
    with pytest.raises(InventoryConfigError, match="keep_finished_reservations"):
        load_inventory_config(path)
