"""`shopstream dlq show`: the decoded view of dead letters — every header, the key, and the value (Avro
through the schema registry when Confluent-framed, else pretty JSON, UTF-8 text or hex).
"""

from __future__ import annotations

import json
import sys
from typing import IO, Any

from shopstream.config import Settings
from shopstream.topology import Topology

from .dlq_common import now_ms, one_line, resolve_dlq, safe_out
from .dlq_filters import DeadLetter, Selection, UsageError, age, iso, plain_value, render_bytes
from .dlq_scan import TopicMissing, broker_topics, scan

SHOW_LIMIT = 20


class ValueDecoder:
    """The decoded view of a value: Avro through the registry when Confluent-framed, else plain."""

    def __init__(self, registry_url: str) -> None:
        self._url = registry_url
        self._serde: Any = None

    def decode(self, value: bytes | None) -> dict[str, Any]:
        if value is None:
            return {"format": "null", "data": None}
        if len(value) >= 5 and value[0] == 0:
            schema_id = int.from_bytes(value[1:5], "big")
            note = self._avro(value, schema_id)
            if "data" in note:
                return note
            plain = plain_value(value)
            plain["note"] = note["note"]
            return plain
        return plain_value(value)

    def _avro(self, value: bytes, schema_id: int) -> dict[str, Any]:
        if not self._url:
            return {"note": f"Confluent-framed (schema id {schema_id}); SCHEMA_REGISTRY_URL is not set"}
        from shopstream.serde import AvroSerde, RegistryUnavailable, SerdeError, make_registry_client

        if self._serde is None:
            self._serde = AvroSerde(make_registry_client(self._url))
        try:
            model = self._serde.decode(value)
        except (SerdeError, RegistryUnavailable) as exc:
            return {"note": f"Confluent-framed (schema id {schema_id}) but not decodable: {exc}"}
        return {"format": "avro", "schema_id": schema_id, "record": getattr(model, "AVRO_NAME", type(model).__name__),
                "data": model.model_dump(mode="json")}


def _record_view(dl: DeadLetter, decoder: ValueDecoder) -> dict[str, Any]:
    return {
        "topic": dl.topic, "partition": dl.partition, "offset": dl.offset,
        "timestamp": iso(dl.timestamp_ms), "timestamp_ms": dl.timestamp_ms,
        "key": render_bytes(dl.key) if dl.key is not None else None,
        "headers": [[k, render_bytes(v)] for k, v in dl.headers],
        "context": dl.context(),
        "value": decoder.decode(dl.value),
    }


def _print_record(view: dict[str, Any], now: int, out: IO[str]) -> None:
    ctx = view["context"]
    print(f"== {view['topic']}  partition {view['partition']}  offset {view['offset']}  "
          f"parked {view['timestamp']} ({age(view['timestamp_ms'], now)} ago)", file=out)
    print(f"original     {ctx['original_topic']} [{ctx['original_partition']}] @ {ctx['original_offset']}, "
          f"{iso(ctx['original_timestamp_ms'])}", file=out)
    print(f"processor    {ctx['processor']} ({ctx['processor_version']}), stage {ctx['stage']}, "
          f"attempts {ctx['attempts']}", file=out)
    print(f"error        {ctx['error_class']}: {one_line(ctx['error_message'], 300)}", file=out)
    print(f"fingerprint  {ctx['fingerprint']}", file=out)
    print(f"failures     first {iso(ctx['first_failure_ms'])}, last {iso(ctx['last_failure_ms'])}", file=out)
    print(f"replays      {ctx['replay_count']}", file=out)
    print(f"key          {view['key'] if view['key'] is not None else 'null'}", file=out)
    print("headers", file=out)
    for k, v in view["headers"]:
        lines = str(v).splitlines() or [""]
        print(f"  {k}: {lines[0]}", file=out)
        for line in lines[1:]:
            print(f"      {line}", file=out)
    value = view["value"]
    title = {"avro": f"avro {value.get('record')} (schema id {value.get('schema_id')})", "json": "JSON (UTF-8)",
             "text": "text (UTF-8)", "hex": "hex (not UTF-8)", "null": "null"}[value["format"]]
    print(f"value        {title}", file=out)
    if value.get("note"):
        print(f"  note: {value['note']}", file=out)
    data = value["data"]
    if value["format"] in ("avro", "json"):
        body = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)
    else:
        body = "null" if data is None else str(data)
    for line in body.splitlines():
        print(f"  {line}", file=out)
    print(file=out)


def dlq_show(settings: Settings, topology: Topology, topic_name: str, *, offset: int | None = None,
             fingerprint: str | None = None, since_ms: int | None = None, until_ms: int | None = None,
             limit: int = SHOW_LIMIT, as_json: bool = False, out: IO[str] | None = None) -> int:
    """The decoded view of the records of one DLQ (all, one offset, one fingerprint or a time window)."""
    out = safe_out(out or sys.stdout)  # what a DLQ holds may carry terminal escape sequences
    if offset is not None and (fingerprint is not None or since_ms is not None or until_ms is not None):
        raise UsageError("--offset selects one record: it cannot be combined with --fingerprint, --since or --until")
    if limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    topic = resolve_dlq(topology, topic_name, settings.topic_prefix)
    selection = Selection(fingerprint=fingerprint, since_ms=since_ms, until_ms=until_ms,
                          offset_from=offset, offset_to=offset)
    physical = topic.physical_name(settings.topic_prefix)
    if physical not in broker_topics(settings):
        raise TopicMissing(physical)
    decoder = ValueDecoder(settings.schema_registry_url)
    views: list[dict[str, Any]] = []
    more = False
    for dl in scan(settings, physical, selection):
        if len(views) == limit:
            more = True
            break
        views.append(_record_view(dl, decoder))
    now = now_ms()
    if as_json:
        print(json.dumps({"topic": topic.name, "physical_topic": physical, "records": views,
                          "truncated": more}, indent=2, ensure_ascii=False), file=out)
        return 0
    for view in views:
        _print_record(view, now, out)
    tail = f" (limit {limit} reached: narrow the selection or raise --limit)" if more else ""
    print(f"{len(views)} record(s) shown from {physical}{tail}", file=out)
    return 0
