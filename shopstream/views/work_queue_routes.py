"""The view sink's routes into the work-queue view: `review.queue` items and `review.decisions` decisions.

Both topics feed one `WorkItemStore` (see `shopstream.views.work_items`). Neither is compacted: a null
value is undecodable and parked like any record of the wrong type. On `review.decisions` the review
rules' verdicts (OrderReviewed) are for the orders worker; the view skips them (counted as duplicates).
"""

from __future__ import annotations

from typing import Any

from shopstream.schemas.models import OrderReviewed, ReviewItem, WorkItemDecided
from shopstream.serde import AvroSerde, SerdeError
from shopstream.views.work_items import WorkItemStore


class NotAWorkQueueRecord(SerdeError):
    """A well-formed record that does not belong on the work-queue topics."""


class ReviewQueueRoute:
    """`review.queue` -> one work item per ReviewItem."""

    tombstones = False

    def __init__(self, topic: str, serde: AvroSerde, store: WorkItemStore) -> None:
        self.topic = topic
        self.serde = serde
        self.store = store

    def decode(self, value: bytes | None) -> ReviewItem:
        record = self.serde.decode(value)
        if not isinstance(record, ReviewItem):
            raise NotAWorkQueueRecord(f"{type(record).__name__} is not a ReviewItem")
        return record

    def entry(self, decoded: ReviewItem, key: bytes | None) -> ReviewItem:
        return decoded

    def put_many(self, entries: list[ReviewItem]) -> list[bool]:
        return [self.store.put_item(item) for item in entries]

    def delete(self, key: str) -> bool:  # never called: tombstones is False
        raise TypeError(f"{self.topic} takes no tombstones")

    def close(self) -> None:
        self.store.close()


class DecisionsRoute:
    """`review.decisions` -> a person's decision on its work item (the first per item wins)."""

    tombstones = False

    def __init__(self, topic: str, serde: AvroSerde, store: WorkItemStore) -> None:
        self.topic = topic
        self.serde = serde
        self.store = store

    def decode(self, value: bytes | None) -> Any:
        record = self.serde.decode(value)
        if not isinstance(record, WorkItemDecided | OrderReviewed):
            raise NotAWorkQueueRecord(f"{type(record).__name__} does not belong on review.decisions")
        return record

    def entry(self, decoded: WorkItemDecided | OrderReviewed, key: bytes | None) -> WorkItemDecided | None:
        return decoded if isinstance(decoded, WorkItemDecided) else None

    def put_many(self, entries: list[WorkItemDecided | None]) -> list[bool]:
        return [self.store.put_decision(e) if e is not None else False for e in entries]

    def delete(self, key: str) -> bool:  # never called: tombstones is False
        raise TypeError(f"{self.topic} takes no tombstones")

    def close(self) -> None:
        pass  # the store is closed by ReviewQueueRoute (one client for both routes)
