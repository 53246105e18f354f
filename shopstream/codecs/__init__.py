"""Avro writers for the hot paths, kept in the kernel so every one shares the same primitives and checks.

`avro`: the binary primitives (zig-zag varint, string, optional string, timestamp-millis, the
Confluent frame, uuid5 event ids). `selfcheck`: the one policy every fast writer follows — when it is
built it writes sample records and compares them byte for byte with fastavro's generic writer under
the schema it must follow, and refuses to start (`CodecMismatch`) on any difference. One module per
record written field by field: `atp_level`, `sync_shop_stock`, `stock_snapshot_batch`. `model_writer`:
writers compiled from any record's schema, for `AvroSerde.encode` of pydantic models (checked the
same way on the first model each writes).

Kernel rule (tests/unit/test_architecture.py): nothing here imports a feature package
(processors, connectors, …); the writers take their input through small protocols instead.
"""
