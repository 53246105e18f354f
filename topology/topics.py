"""The topic topology as data: the pydantic model of `topics.yaml` and its loader (overlays included).

`topics.yaml` (next to this module) is the single place where topic names are defined. This module is
pure (no Kafka import): it reads the file, resolves defaults and generated dead-letter companions into a
`Topology` of fully specified `Topic`s. What is inconsistent about one is `checks.py`'s business; creating
the topics on a broker lives in `shopstream.topology.admin`.

File shape (see the comments in `topics.yaml`)::

    version: 1
    defaults:     {partitions, replication_factor, retention, cleanup_policy, configs}
    dlq_defaults: {partitions, replication_factor, retention, cleanup_policy, configs}  # for DLQ topics
    topics:
      - name: shop.orders
        kind: input               # input | derived | internal | dlq
        key: order_id
        records: [OrderPlaced, ...]
        consumed: true
        dlq: auto                 # auto -> "<name>.dlq"; or an explicit name; omitted -> none
        copartition_group: order
        # optional: partitions, replication_factor, retention, cleanup_policy, configs, description,
        # value_format (avro, the default | json: tool-internal documents, declares no records)

An overlay (a second file, e.g. for production) has the same top-level keys, every one optional, and
``topics`` as a mapping ``name -> fields to override``; it is merged over the base before validation.
The shipped production overlay is `overlays/production.yaml`. Every runtime reader of the topology
(workers, `topics apply|check`, `dlq`, the read API, `dev`, `bench`) calls `load_topology_for(settings)`,
so SHOPSTREAM_TOPOLOGY_OVERLAY applies everywhere at once.

The topology is also what the runner's state stores read (decided for issue 10): their changelog
topics are declared here (kind `internal`, compacted, `changelog_name(app, table)`), so `topics apply`
creates them with the topology's partitions, replication and configs; a store's partition count is its
changelog's, which `table_changelog()` checks against the co-partition group of the processor's
inputs. The runner never declares a topic itself.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shopstream.yamlmodel import read_yaml

if TYPE_CHECKING:
    from shopstream.config import Settings

#: The shipped topology file.
DEFAULT_TOPOLOGY_PATH = Path(__file__).with_name("topics.yaml")

#: The shipped production overlay (replication 3, min.insync.replicas 2, more partitions).
PRODUCTION_OVERLAY_PATH = Path(__file__).parent / "overlays" / "production.yaml"

#: What `check_production()` requires of every topic: survive the loss of one broker without losing
#: an acknowledged write (acks=all with 2 in-sync replicas out of 3).
PRODUCTION_MIN_REPLICATION = 3
PRODUCTION_MIN_INSYNC = 2

#: Cleanup policies Kafka knows (normalised: parts sorted, joined by a comma).
CLEANUP_POLICIES = frozenset({"delete", "compact", "compact,delete"})

#: `dlq: auto` names the companion `<topic>` + this suffix (the only place a DLQ name is derived).
DLQ_SUFFIX = ".dlq"

#: The DLQ no topic owns: raw webhook/file bodies a connector could not parse (declared in topics.yaml).
CONNECTORS_DLQ = "connectors.dlq"

TopicKind = Literal["input", "derived", "internal", "dlq"]

#: What a topic's values are: canonical Avro records (the default) or JSON documents (tool-internal logs).
ValueFormat = Literal["avro", "json"]

_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
_FOREVER = frozenset({"-1", "forever", "infinite", "never"})


class TopologyError(ValueError):
    """The topology file cannot be read or does not validate; the message names the topic and field."""


# --------------------------------------------------------------------------------------------- parsing


def parse_duration_ms(value: int | str) -> int:
    """Milliseconds for a retention/duration value.

    Accepts an int (already ms), a digit string (ms), ``-1``/``forever``/``infinite``/``never`` (-1: keep
    forever), or a human form of number+unit parts with units ms, s, m, h, d, w: ``500ms``, ``45s``,
    ``7d``, ``1d12h``. Raises ValueError otherwise.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, int):
        if value < -1:
            raise ValueError(f"duration must be >= -1 ms, got {value}")
        return value
    text = str(value).strip().lower().replace(" ", "").replace("_", "")
    if text in _FOREVER:
        return -1
    if text.isdigit():
        return int(text)
    pos, total = 0, 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _UNIT_MS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(
            f"cannot parse duration {value!r}: use ms or number+unit (ms, s, m, h, d, w), e.g. 7d, 12h, 1d12h"
        )
    return total


def normalize_cleanup_policy(value: str) -> str:
    """Lower-case, strip and sort the comma-separated parts: ``Delete, compact`` -> ``compact,delete``."""
    parts = sorted({p.strip().lower() for p in str(value).split(",") if p.strip()})
    return ",".join(parts)


def _no_shadowed_configs(configs: dict[str, Any]) -> dict[str, Any]:
    """`configs` must not set what has a field of its own (the field would silently win)."""
    for key, field in (("retention.ms", "retention"), ("cleanup.policy", "cleanup_policy")):
        if key in configs:
            raise ValueError(f"set {key} with the `{field}` field, not under configs")
    return configs


def _config_value(key: str, value: Any) -> str:
    """A topic config value as the string Kafka reports back; `*.ms` keys accept human durations."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if key.endswith(".ms") and isinstance(value, int | str):
        return str(parse_duration_ms(value))
    if key == "cleanup.policy":
        return normalize_cleanup_policy(str(value))
    return str(value)


# ------------------------------------------------------------------------------------ file-level model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TopicDefaults(_Strict):
    """Values a topic entry inherits when it does not set them (all optional)."""

    partitions: int | None = Field(default=None, ge=1)
    replication_factor: int | None = Field(default=None, ge=1)
    retention: int | str | None = None
    cleanup_policy: str | None = None
    configs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("retention")
    @classmethod
    def _retention(cls, v: int | str | None) -> int | str | None:
        return None if v is None else parse_duration_ms(v)

    @field_validator("configs")
    @classmethod
    def _configs(cls, v: dict[str, Any]) -> dict[str, Any]:
        return _no_shadowed_configs(v)


class TopicSpec(_Strict):
    """One entry of `topics:` as written in the file (before defaults are applied)."""

    name: str
    kind: TopicKind
    key: str | None = None
    records: list[str] = Field(default_factory=list)
    value_format: ValueFormat = "avro"
    description: str = ""
    consumed: bool = False
    dlq: str | None = None
    copartition_group: str | None = None
    partitions: int | None = Field(default=None, ge=1)
    replication_factor: int | None = Field(default=None, ge=1)
    retention: int | str | None = None
    cleanup_policy: str | None = None
    configs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name", "dlq")
    @classmethod
    def _legal_name(cls, v: str | None) -> str | None:
        if v is not None and v != "auto" and not _TOPIC_NAME.match(v):
            raise ValueError(f"{v!r} is not a legal Kafka topic name (1-249 of [A-Za-z0-9._-])")
        return v

    @field_validator("retention")
    @classmethod
    def _retention(cls, v: int | str | None) -> int | str | None:
        return None if v is None else parse_duration_ms(v)

    @field_validator("configs")
    @classmethod
    def _configs(cls, v: dict[str, Any]) -> dict[str, Any]:
        return _no_shadowed_configs(v)


class TopologyFile(_Strict):
    """The whole `topics.yaml` document."""

    version: Literal[1] = 1
    defaults: TopicDefaults
    dlq_defaults: TopicDefaults = Field(default_factory=lambda: TopicDefaults())
    topics: list[TopicSpec]


# -------------------------------------------------------------------------------------- resolved model


class Topic(BaseModel):
    """A fully specified topic: what `apply` creates and `check` inspects. `name` is the logical name."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: TopicKind
    key: str | None
    records: tuple[str, ...] = ()
    value_format: ValueFormat = "avro"
    description: str = ""
    consumed: bool = False
    dlq: str | None = None
    dlq_of: tuple[str, ...] = ()
    copartition_group: str | None = None
    partitions: int = Field(ge=1)
    replication_factor: int = Field(ge=1)
    retention_ms: int = Field(ge=-1)
    cleanup_policy: str
    configs: dict[str, str] = Field(default_factory=dict)

    @property
    def compacted(self) -> bool:
        """True when the cleanup policy includes compaction."""
        return "compact" in self.cleanup_policy.split(",")

    def kafka_configs(self) -> dict[str, str]:
        """Every topic config set explicitly at creation (retention and cleanup always included)."""
        out = dict(self.configs)
        out["retention.ms"] = str(self.retention_ms)
        out["cleanup.policy"] = self.cleanup_policy
        return out

    def physical_name(self, prefix: str = "") -> str:
        """The name on the broker: `prefix` + logical name."""
        return f"{prefix}{self.name}"


class Topology(BaseModel):
    """All topics, declared and generated, in file order (each declared topic followed by its new DLQ)."""

    model_config = ConfigDict(frozen=True)

    topics: tuple[Topic, ...]
    source: str = "<memory>"

    def topic(self, name: str) -> Topic:
        """The topic with logical name `name`; KeyError naming the known topics otherwise."""
        for t in self.topics:
            if t.name == name:
                return t
        raise KeyError(f"unknown topic {name!r}; known: {', '.join(self.names())}")

    def names(self) -> list[str]:
        """Logical names of all topics, in order."""
        return [t.name for t in self.topics]

    def physical_names(self, prefix: str = "") -> list[str]:
        """Broker names of all topics for `prefix`."""
        return [t.physical_name(prefix) for t in self.topics]

    def consumed(self) -> list[Topic]:
        """Topics some shopstream processor or sink consumes."""
        return [t for t in self.topics if t.consumed]

    def dlq_for(self, name: str) -> str | None:
        """Logical name of the dead-letter topic of `name` (None if it has none)."""
        return self.topic(name).dlq

    def group(self, group: str) -> list[Topic]:
        """Members of a co-partition group."""
        return [t for t in self.topics if t.copartition_group == group]

    def copartition_partitions(self, names: Iterable[str]) -> int:
        """The partition count shared by the topics `names` (a processor's inputs), via their group.

        Raises TopologyError if they are not all in one co-partition group or if that group's members
        disagree: a table partitioned differently from its inputs would hold keys on the wrong partition.
        """
        topics = [self.topic(n) for n in names]
        groups = {t.copartition_group for t in topics}
        if len(groups) != 1 or None in groups:
            detail = ", ".join(f"{t.name}={t.copartition_group}" for t in topics)
            raise TopologyError(f"{self.source}: inputs are not one co-partition group ({detail})")
        (group,) = groups
        assert group is not None
        counts = {t.partitions for t in self.group(group)}
        if len(counts) != 1:
            raise TopologyError(f"{self.source}: copartition group {group!r} has differing partition counts")
        return counts.pop()

    def internal_topics(self, app: str) -> list[Topic]:
        """Internal topics of processor `app` (logical name), e.g. its state-store changelogs."""
        return [t for t in self.topics if t.kind == "internal" and t.name.startswith(f"{app}-")]

    def table_changelog(self, app: str, table: str, inputs: Iterable[str]) -> Topic:
        """The declared changelog of table `table` of app `app`, checked against the app's `inputs`.

        Its partition count is the table's; it must equal the inputs' co-partition group's, so that a
        key's table entry lives on the partition its input records arrive on. Raises TopologyError when
        the changelog is not declared or its partitions differ.
        """
        name = changelog_name(app, table)
        try:
            changelog = self.topic(name)
        except KeyError:
            raise TopologyError(f"{self.source}: table {table!r} of {app!r} needs its changelog topic "
                                f"{name!r} declared (kind internal, compacted)") from None
        partitions = self.copartition_partitions(inputs)
        if changelog.partitions != partitions:
            raise TopologyError(f"{self.source}: changelog {name!r} has {changelog.partitions} partitions, "
                                f"its table's inputs {partitions}: raise the co-partition group together")
        return changelog

    def dlq_routes(self, prefix: str = "") -> dict[str, str]:
        """Physical topic name -> physical name of its dead-letter topic, for every topic that has one."""
        return {t.physical_name(prefix): f"{prefix}{t.dlq}" for t in self.topics if t.dlq is not None}

    def render_plan(self, prefix: str = "") -> str:
        """What `topics apply` would create, from the topology alone: one line per topic (physical name)."""
        lines = [f"plan from {self.source} (nothing contacted, nothing created)"]
        width = max(len(t.physical_name(prefix)) for t in self.topics)
        for t in self.topics:
            configs = ", ".join(f"{k}={v}" for k, v in sorted(t.kafka_configs().items()))
            lines.append(f"{t.physical_name(prefix):<{width}}  {t.kind:<8}  partitions={t.partitions:<3} "
                         f"replication_factor={t.replication_factor}  {configs}")
        lines.append(f"{len(self.topics)} topics")
        return "\n".join(lines)


def changelog_name(app: str, table: str) -> str:
    """The name of a state store's changelog topic: `<processor>-<store>-changelog` (the name Faust gave its
    tables' changelogs, kept so that existing changelogs restore).

    This is the logical topic name; the physical one adds the topic prefix (`Settings.topic`).
    """
    return f"{app}-{table}-changelog"


# ------------------------------------------------------------------------------------------- loading


def _merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Overlay onto the raw base document: dicts merge key-wise, `topics` merge by name."""
    out = dict(base)
    for key, value in overlay.items():
        if key == "topics":
            if not isinstance(value, Mapping):
                raise TopologyError("overlay: `topics` must be a mapping of topic name -> fields to override")
            by_name = {t.get("name"): i for i, t in enumerate(out.get("topics") or []) if isinstance(t, dict)}
            topics = [dict(t) for t in out.get("topics") or []]
            for name, fields in value.items():
                if name not in by_name:
                    raise TopologyError(f"overlay: topic {name!r} is not in the base topology")
                if not isinstance(fields, Mapping):
                    raise TopologyError(f"overlay: topic {name!r}: expected a mapping of fields")
                topics[by_name[name]] = _merge(topics[by_name[name]], fields)
            out["topics"] = topics
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _describe_error(data: Mapping[str, Any], err: Mapping[str, Any]) -> str:
    loc = list(err.get("loc", ()))
    where = ".".join(str(p) for p in loc) or "<document>"
    if len(loc) >= 2 and loc[0] == "topics" and isinstance(loc[1], int):
        topics = data.get("topics") or []
        entry = topics[loc[1]] if loc[1] < len(topics) else None
        name = entry.get("name") if isinstance(entry, Mapping) else None
        field = ".".join(str(p) for p in loc[2:]) or "<entry>"
        where = f"topic {name!r} (topics[{loc[1]}]) field {field}"
    msg = str(err.get("msg", "invalid"))
    return f"{where}: {msg}"


def _resolve(spec: TopicSpec, d: TopicDefaults, base: TopicDefaults) -> dict[str, Any]:
    """Field values of `spec` with `d` then `base` filling the gaps."""

    def pick(field: str, fallback: Any) -> Any:
        for src in (spec, d, base):
            value = getattr(src, field)
            if value is not None:
                return value
        return fallback

    configs = {**base.configs, **d.configs, **spec.configs}
    return {
        "partitions": pick("partitions", 1),
        "replication_factor": pick("replication_factor", 1),
        "retention_ms": parse_duration_ms(pick("retention", 7 * 86_400_000)),
        "cleanup_policy": normalize_cleanup_policy(pick("cleanup_policy", "delete")),
        "configs": {k: _config_value(k, v) for k, v in configs.items()},
    }


def parse_topology(data: Mapping[str, Any], source: str = "<memory>") -> Topology:
    """Validate a topology document (the parsed YAML) and resolve defaults and generated DLQ companions.

    Raises TopologyError listing every problem as "topic 'x' (topics[i]) field f: message".
    Consistency across topics (co-partitioning, DLQ coverage, ...) is `check()`'s job, not this one's.
    """
    try:
        doc = TopologyFile.model_validate(data)
    except ValidationError as exc:
        lines = [_describe_error(data, dict(e)) for e in exc.errors()]
        raise TopologyError(f"{source}: invalid topology:\n  " + "\n  ".join(lines)) from None

    declared = {s.name for s in doc.topics}
    empty = TopicDefaults()
    topics: list[Topic] = []
    generated: dict[str, int] = {}  # generated DLQ name -> index in `topics`
    dlq_sources: dict[str, list[str]] = defaultdict(list)
    for spec in doc.topics:
        dlq = f"{spec.name}{DLQ_SUFFIX}" if spec.dlq == "auto" else spec.dlq
        d = doc.dlq_defaults if spec.kind == "dlq" else empty
        try:
            values = _resolve(spec, d, doc.defaults)
        except ValueError as exc:
            raise TopologyError(f"{source}: topic {spec.name!r}: {exc}") from None
        topics.append(Topic(
            name=spec.name, kind=spec.kind, key=spec.key, records=tuple(spec.records),
            value_format=spec.value_format,
            description=spec.description, consumed=spec.consumed, dlq=dlq,
            copartition_group=spec.copartition_group, **values,
        ))
        if dlq is None:
            continue
        dlq_sources[dlq].append(spec.name)
        if dlq in declared or dlq in generated:
            continue
        dlq_spec = TopicSpec(
            name=dlq, kind="dlq", key=f"{spec.key} (original key)" if spec.key else None,
            description=f"dead letters of {spec.name}: original bytes + error context headers",
        )
        generated[dlq] = len(topics)
        topics.append(Topic(
            name=dlq, kind="dlq", key=dlq_spec.key, description=dlq_spec.description,
            **_resolve(dlq_spec, doc.dlq_defaults, doc.defaults),
        ))
    # Record which topics each DLQ serves (a DLQ may be shared, e.g. declared once and named by many).
    topics = [t.model_copy(update={"dlq_of": tuple(dlq_sources.get(t.name, ()))}) for t in topics]
    return Topology(topics=tuple(topics), source=source)


def _read_yaml(path: Path) -> dict[str, Any]:
    data = read_yaml(path, TopologyError, "topology")
    if not isinstance(data, dict):
        raise TopologyError(f"{path}: expected a mapping at the top level")
    return data


def load_topology(path: Path | None = None, *, overlay: Path | None = None) -> Topology:
    """Load and validate the topology: `path` (default: the shipped `topics.yaml`), then `overlay` merged on.

    The overlay is how production differs from dev without editing the contract file: e.g.
    ``defaults: {replication_factor: 3, configs: {min.insync.replicas: 2}}`` and
    ``topics: {shop.orders: {partitions: 12}}``. Raises TopologyError naming the topic and field.
    """
    path = path or DEFAULT_TOPOLOGY_PATH
    data = _read_yaml(path)
    source = str(path)
    if overlay is not None:
        data = _merge(data, _read_yaml(overlay))
        source = f"{path} + {overlay}"
    return parse_topology(data, source=source)


def load_topology_for(settings: Settings, path: Path | None = None, *, overlay: Path | None = None) -> Topology:
    """The topology the runtime uses: `path` (default: shipped) with `overlay`, else SHOPSTREAM_TOPOLOGY_OVERLAY.

    The one helper every process reads the topology through, so an overlay cannot reach some readers
    (topics apply) and miss others (a worker sizing its table).
    """
    if overlay is None and settings.topology_overlay:
        overlay = Path(settings.topology_overlay)
    return load_topology(path, overlay=overlay)
