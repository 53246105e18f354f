"""Schema evolution: the current contract stays BACKWARD compatible with the last release.

`schemas/released/` is a frozen copy of the `.avsc` files of the last release (see its VERSION).
New code (reader = current schema) must read everything written with the released schema
(writer). Never edit the released copy to make this pass; at a release, replace the copy whole.
"""

from __future__ import annotations

import io
from pathlib import Path

import fastavro
import pytest

from shopstream import schemas
from shopstream.dev.registry.compat import backward_incompatibilities
from shopstream.schemas.models import RECORDS
from tests.unit.test_schemas import example

RELEASED_DIR: Path = schemas.avsc_dir() / "released"
RELEASED = schemas.load_named_types(RELEASED_DIR)
CURRENT = schemas.load_named_types()
RELEASED_RECORDS = sorted(k for k, v in RELEASED.items() if v["type"] == "record")


def test_release_snapshot_exists() -> None:
    assert (RELEASED_DIR / "VERSION").read_text().strip() == "v1"
    assert schemas.fullname("OrderPlaced") in RELEASED
    assert schemas.top_level_records(RELEASED_DIR)


def test_no_released_type_was_deleted() -> None:
    deleted = sorted(set(RELEASED) - set(CURRENT))
    assert not deleted, f"released types deleted (a consumer may still read them): {deleted}"


def test_no_released_type_changed_kind() -> None:
    for name, raw in RELEASED.items():
        if name in CURRENT:
            assert CURRENT[name]["type"] == raw["type"], name


@pytest.mark.parametrize("name", RELEASED_RECORDS)
def test_current_schema_reads_released_data(name: str) -> None:
    problems = backward_incompatibilities(
        schemas.schema_for(name),  # reader: this build
        schemas.schema_for(name, folder=RELEASED_DIR),  # writer: the released schema
    )
    assert problems == [], f"{name} is not BACKWARD compatible with the release:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", schemas.top_level_records(RELEASED_DIR))
def test_released_bytes_decode_into_current_models(name: str) -> None:
    """fastavro's own resolution agrees: released-writer bytes decode into this build's model."""
    writer = fastavro.parse_schema(schemas.schema_for(name, folder=RELEASED_DIR), named_schemas={})
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, writer, example(name, folder=RELEASED_DIR))
    buf.seek(0)
    decoded = fastavro.schemaless_reader(buf, writer, schemas.parsed_schema(name))
    assert isinstance(schemas.from_avro(name, decoded), RECORDS[name])


def test_the_check_is_not_vacuous() -> None:
    """A required field added without a default must be reported."""
    writer = schemas.schema_for("OrderCancelled", folder=RELEASED_DIR)
    reader = schemas.schema_for("OrderCancelled")
    reader["fields"] = [*reader["fields"], {"name": "refund_due", "type": "boolean"}]
    assert backward_incompatibilities(reader, writer)
