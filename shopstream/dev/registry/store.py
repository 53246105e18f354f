"""Schema storage for the embedded registry: subjects, versions, global ids, compatibility config.

State lives in memory behind one lock and is written to a JSON file (temp file + os.replace,
so a crash leaves the old or the new file, never half of one) after every change.

Semantics follow Confluent Schema Registry: a global id per distinct schema (the same schema
under two subjects shares its id), versions counted per subject, re-registering a live schema
is a no-op, soft delete first and permanent delete second. Schema texts are kept by id even
after a permanent delete, so consumers can still decode old records.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import fastavro

from shopstream.dev.registry.compat import InvalidSchemaError, backward_incompatibilities, validate_schema

__all__ = [
    "LEVELS",
    "RegistryError",
    "SchemaStore",
    "SchemaVersion",
    "canonical_schema",
]

LEVELS = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)
DEFAULT_LEVEL = "BACKWARD"
VersionRef = int | Literal["latest"]


class RegistryError(Exception):
    """A failure with a Confluent error code (40401 ...); the HTTP status is derived from it."""

    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message

    @property
    def status(self) -> int:
        # Confluent codes are the HTTP status followed by two digits, except the bare 409
        return self.error_code if self.error_code < 1000 else self.error_code // 100


def _subject_not_found(subject: str) -> RegistryError:
    return RegistryError(40401, f"Subject '{subject}' not found.")


@dataclass
class SchemaVersion:
    """One version of one subject."""

    subject: str
    version: int
    id: int
    schema: str
    deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        """The Confluent response shape for a subject version."""
        return {
            "subject": self.subject,
            "version": self.version,
            "id": self.id,
            "schemaType": "AVRO",
            "schema": self.schema,
        }


def canonical_schema(schema: str) -> tuple[str, str]:
    """Validate an Avro schema text; return (stored text, dedupe key).

    The stored text is the compact JSON in the author's key order; the dedupe key also sorts
    object keys, so whitespace and key order do not mint new ids. Field order is kept: it
    changes the binary encoding.
    """
    try:
        parsed = json.loads(schema)
    except (TypeError, json.JSONDecodeError) as exc:
        raise RegistryError(42201, f"Invalid schema: not JSON: {exc}") from exc
    try:
        fastavro.parse_schema(parsed, _write_hint=False)
        validate_schema(parsed)  # fastavro lets a few things through (a record without fields)
    except Exception as exc:  # fastavro raises several unrelated types for bad schemas
        raise RegistryError(42201, f"Invalid schema: {exc}") from exc
    text = json.dumps(parsed, separators=(",", ":"), ensure_ascii=False)
    key = json.dumps(parsed, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return text, key


def _incompatibilities(level: str, new: str, olds: list[SchemaVersion]) -> list[str]:
    """Messages for `new` against `olds` (newest first) under a compatibility level."""
    if level == "NONE":
        return []
    targets = olds if level.endswith("_TRANSITIVE") else olds[:1]
    messages: list[str] = []
    try:
        for old in targets:
            if level.startswith(("BACKWARD", "FULL")):
                found = backward_incompatibilities(new, old.schema)
                messages += [f"{m} (reading version {old.version})" for m in found]
            if level.startswith(("FORWARD", "FULL")):
                found = backward_incompatibilities(old.schema, new)
                messages += [f"forward: {m} (version {old.version} reading the new schema)" for m in found]
    except InvalidSchemaError as exc:
        raise RegistryError(42201, f"Invalid schema: {exc}") from exc
    return messages


class SchemaStore:
    """Thread-safe registry state, persisted to `path` (memory only when path is None)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.RLock()
        self._schemas: dict[int, str] = {}
        self._ids_by_key: dict[str, int] = {}
        self._subjects: dict[str, list[SchemaVersion]] = {}
        self._global_level = DEFAULT_LEVEL
        self._subject_levels: dict[str, str] = {}
        if self.path is not None and self.path.exists():
            self._load(self.path)

    # --- persistence -------------------------------------------------------------------------

    def _load(self, path: Path) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        for sid, text in data.get("schemas", {}).items():
            self._schemas[int(sid)] = text
            self._ids_by_key[canonical_schema(text)[1]] = int(sid)
        for subject, versions in data.get("subjects", {}).items():
            self._subjects[subject] = [
                SchemaVersion(subject, v["version"], v["id"], self._schemas[v["id"]], v["deleted"]) for v in versions
            ]
        config = data.get("config", {})
        self._global_level = config.get("global", DEFAULT_LEVEL)
        self._subject_levels = dict(config.get("subjects", {}))

    def _save(self) -> None:
        if self.path is None:
            return
        data = {
            "format": 1,
            "schemas": {str(k): v for k, v in sorted(self._schemas.items())},
            "subjects": {
                # the text lives once, under its id
                s: [{"version": v.version, "id": v.id, "deleted": v.deleted} for v in vs]
                for s, vs in self._subjects.items()
            },
            "config": {"global": self._global_level, "subjects": self._subject_levels},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".registry-", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1, ensure_ascii=False)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # --- reads ---------------------------------------------------------------------------------

    def _versions(self, subject: str, deleted: bool) -> list[SchemaVersion]:
        versions = [v for v in self._subjects.get(subject, []) if deleted or not v.deleted]
        if not versions:
            raise _subject_not_found(subject)
        return versions

    def subjects(self, deleted: bool = False) -> list[str]:
        with self._lock:
            return sorted(s for s, vs in self._subjects.items() if any(deleted or not v.deleted for v in vs))

    def versions(self, subject: str, deleted: bool = False) -> list[int]:
        with self._lock:
            return [v.version for v in self._versions(subject, deleted)]

    def get_version(self, subject: str, version: VersionRef, deleted: bool = False) -> SchemaVersion:
        with self._lock:
            versions = self._versions(subject, deleted)
            if version == "latest":
                return versions[-1]
            for v in versions:
                if v.version == version:
                    return v
            raise RegistryError(40402, f"Version {version} not found.")

    def schema_by_id(self, schema_id: int) -> str:
        with self._lock:
            if schema_id not in self._schemas:
                raise RegistryError(40403, f"Schema {schema_id} not found")
            return self._schemas[schema_id]

    def id_versions(self, schema_id: int, deleted: bool = False) -> list[tuple[str, int]]:
        """(subject, version) pairs registered with a schema id."""
        with self._lock:
            self.schema_by_id(schema_id)
            return [
                (s, v.version)
                for s, vs in sorted(self._subjects.items())
                for v in vs
                if v.id == schema_id and (deleted or not v.deleted)
            ]

    def lookup(self, subject: str, schema: str, deleted: bool = False) -> SchemaVersion:
        """The version of `subject` holding `schema` (ignoring formatting)."""
        _, key = canonical_schema(schema)
        with self._lock:
            versions = self._versions(subject, deleted)
            schema_id = self._ids_by_key.get(key)
            for v in reversed(versions):
                if v.id == schema_id:
                    return v
            raise RegistryError(40403, "Schema not found")

    # --- compatibility -----------------------------------------------------------------------------

    def compatibility(self, subject: str | None = None) -> str:
        """The level for a subject (falling back to the global level), or the global level."""
        with self._lock:
            if subject is not None and subject in self._subject_levels:
                return self._subject_levels[subject]
            return self._global_level

    def set_compatibility(self, level: str, subject: str | None = None) -> str:
        level = level.upper()
        if level not in LEVELS:
            raise RegistryError(42203, f"Invalid compatibility level. Valid values are: {', '.join(LEVELS)}")
        with self._lock:
            if subject is None:
                self._global_level = level
            else:
                self._subject_levels[subject] = level
            self._save()
        return level

    def delete_compatibility(self, subject: str) -> str:
        """Drop a subject's own level; returns the level it had."""
        with self._lock:
            if subject not in self._subject_levels:
                raise _subject_not_found(subject)
            level = self._subject_levels.pop(subject)
            self._save()
            return level

    def check(self, subject: str, schema: str, version: VersionRef | None = "latest") -> list[str]:
        """Why `schema` may not join `subject` (against one version, or per level when None)."""
        text, _ = canonical_schema(schema)
        with self._lock:
            level = self.compatibility(subject)
            live = [v for v in self._subjects.get(subject, []) if not v.deleted]
            if version is None:
                return _incompatibilities(level, text, live[::-1])
            if not live:  # nothing registered yet: anything is compatible (as Confluent answers)
                return []
            target = self.get_version(subject, version)
            return _incompatibilities(level.removesuffix("_TRANSITIVE"), text, [target])

    # --- writes ----------------------------------------------------------------------------------

    def register(self, subject: str, schema: str) -> SchemaVersion:
        """Add `schema` to `subject` (idempotent); raises 409 when the level forbids it."""
        text, key = canonical_schema(schema)
        with self._lock:
            all_versions = self._subjects.get(subject, [])
            live = [v for v in all_versions if not v.deleted]
            existing_id = self._ids_by_key.get(key)
            for v in live:
                if v.id == existing_id:
                    return v
            messages = _incompatibilities(self.compatibility(subject), text, live[::-1])
            if messages:
                raise RegistryError(
                    409,
                    f"Schema being registered is incompatible with an earlier schema for subject "
                    f'"{subject}", details: {messages}',
                )
            if existing_id is None:
                existing_id = max(self._schemas, default=0) + 1
                self._schemas[existing_id] = text
                self._ids_by_key[key] = existing_id
            number = max((v.version for v in all_versions), default=0) + 1
            version = SchemaVersion(subject=subject, version=number, id=existing_id, schema=text)
            self._subjects.setdefault(subject, []).append(version)
            self._save()
            return version

    def delete_subject(self, subject: str, permanent: bool = False) -> list[int]:
        """Soft delete (hide) a subject, or permanently drop one that is already soft deleted."""
        with self._lock:
            versions = self._subjects.get(subject)
            if not versions:
                raise _subject_not_found(subject)
            if permanent:
                if any(not v.deleted for v in versions):
                    raise RegistryError(
                        40405, f"Subject '{subject}' was not deleted first before being permanently deleted"
                    )
                del self._subjects[subject]
                self._subject_levels.pop(subject, None)
                self._save()
                return [v.version for v in versions]
            live = [v for v in versions if not v.deleted]
            if not live:
                raise RegistryError(40404, f"Subject '{subject}' was soft deleted.")
            for v in live:
                v.deleted = True
            self._save()
            return [v.version for v in live]

    def delete_version(self, subject: str, version: VersionRef, permanent: bool = False) -> int:
        """Soft delete one version, or permanently drop one that is already soft deleted."""
        with self._lock:
            target = self.get_version(subject, version, deleted=permanent)
            if permanent:
                if not target.deleted:
                    raise RegistryError(40407, f"Subject '{subject}' Version {target.version} was not deleted first")
                self._subjects[subject].remove(target)
                if not self._subjects[subject]:
                    del self._subjects[subject]
            else:
                target.deleted = True
            self._save()
            return target.version
