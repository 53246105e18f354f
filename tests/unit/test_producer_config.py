"""The producer settings every confluent-kafka producer gets, for real Kafka and for the durable Tansu."""

from __future__ import annotations

from shopstream.config import load_settings
from shopstream.kafka import producer_config


def test_idempotent_by_default_and_off_with_one_request_in_flight_for_the_durable_tansu() -> None:
    default = producer_config(load_settings(kafka_bootstrap_servers="127.0.0.1:1"))
    assert default["enable.idempotence"] is True and default["acks"] == "all"
    assert "max.in.flight.requests.per.connection" not in default
    durable = producer_config(load_settings(kafka_bootstrap_servers="127.0.0.1:1", kafka_idempotence=False))
    assert durable["enable.idempotence"] is False and durable["acks"] == "all"
    assert durable["max.in.flight.requests.per.connection"] == 1  # a retry must not overtake a later record
