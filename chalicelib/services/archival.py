"""Moving readings older than the hot window out of DynamoDB (the replaced system's data dump service).

Each run archives whole months per meter: the object is written first, then the items are deleted, so
a crash in between leaves a duplicate that the next run overwrites (same key), never a loss. TTL is set
on every reading too, but never relied on.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.domain.readings import READINGS_HOT
from chalicelib.ports import ArchiveStore, ReadingsRepository, TenancyRepository

HOT_WINDOW = READINGS_HOT
Reading = tuple[int, dict[str, Any]]


def archive_key(operator_id: str, meter_id: str, month: str, first_ms: int, last_ms: int) -> str:
    return f"readings/operator={operator_id}/meter={meter_id}/month={month}/{first_ms}-{last_ms}.jsonl.gz"


def encode_readings(meter_id: str, readings: list[Reading]) -> bytes:
    lines = (json.dumps({"meter_id": meter_id, "at_ms": at_ms,
                         "at": datetime.fromtimestamp(at_ms / 1000, UTC).isoformat(), "values": values},
                        sort_keys=True, separators=(",", ":")) for at_ms, values in readings)
    return gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), mtime=0)


def decode_readings(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gzip.decompress(data).decode("utf-8").splitlines() if line]


class ReadingArchiver:
    def __init__(self, readings: ReadingsRepository, tenancy: TenancyRepository, store: ArchiveStore,
                 hot_window: timedelta = HOT_WINDOW) -> None:
        self._readings = readings
        self._tenancy = tenancy
        self._store = store
        self._hot_window = hot_window

    def run(self, now: datetime) -> int:
        """Archive every operator's cold readings; returns how many readings moved."""
        cutoff_ms = int((now - self._hot_window).timestamp() * 1000)
        moved = 0
        for operator_id in self._tenancy.operator_ids():
            for site in self._tenancy.list_sites(operator_id):
                for meter in self._tenancy.list_meters(operator_id, site.site_id):
                    moved += self.archive_meter(operator_id, meter.meter_id, cutoff_ms)
        return moved

    def archive_meter(self, operator_id: str, meter_id: str, cutoff_ms: int) -> int:
        cold = self._readings.readings_before(operator_id, meter_id, cutoff_ms)
        by_month: dict[str, list[Reading]] = defaultdict(list)
        for at_ms, values in cold:
            by_month[datetime.fromtimestamp(at_ms / 1000, UTC).strftime("%Y-%m")].append((at_ms, values))
        for month, readings in sorted(by_month.items()):
            key = archive_key(operator_id, meter_id, month, readings[0][0], readings[-1][0])
            self._store.put(key, encode_readings(meter_id, readings))
            self._readings.delete_readings(operator_id, meter_id, [at_ms for at_ms, _ in readings])
        return len(cold)

    def restore(self, operator_id: str, meter_id: str) -> list[dict[str, Any]]:
        """Every archived reading of one meter, oldest first (for history pages and audits)."""
        rows = [row for key in self._store.keys(f"readings/operator={operator_id}/meter={meter_id}/")
                for row in decode_readings(self._store.get(key))]
        return sorted(rows, key=lambda row: row["at_ms"])
