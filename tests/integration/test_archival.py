"""Archival round trip: cold readings leave DynamoDB for the archive and come back exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from chalicelib.adapters.archive_store import FolderArchive
from chalicelib.bootstrap import get_services
from chalicelib.domain.tenancy import BillingMode, Meter, Site
from chalicelib.services.archival import ReadingArchiver, archive_key
from chalicelib.services.audit import operation
from tests.conftest import OperatorFixture

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_cold_readings_move_to_the_archive_and_back(new_operator: OperatorFixture, tmp_path: Path) -> None:
    services, op = get_services(), new_operator.operator_id
    services.tenancy.add_site(Site(op, "site_arch", "Archive park"), operation(op, "test", "site.create", "s", NOW))
    services.tenancy.add_meters([Meter(op, "site_arch", "m_arch", "SN1", "DTSY1352", "c1", 1, "u1",
                                       BillingMode.PREPAID_METER)])
    old = [(ms(NOW - timedelta(days=d, hours=h)), {"energy_total": f"{1000 - d}.{h:02d}", "purchase_count": d})
           for d in (120, 100, 95) for h in (1, 2)]
    recent = [(ms(NOW - timedelta(days=3)), {"energy_total": "1200.00", "purchase_count": 9})]
    services.readings.put_readings(op, [("m_arch", at, values) for at, values in old + recent])
    archiver = ReadingArchiver(services.readings, services.tenancy, FolderArchive(tmp_path))

    assert archiver.run(NOW) == len(old)
    assert services.readings.readings(op, "m_arch") == recent
    restored = archiver.restore(op, "m_arch")
    assert [(row["at_ms"], row["values"]) for row in restored] == sorted(old)
    assert archiver.run(NOW) == 0  # nothing cold left; nothing archived twice
    assert len(archiver.restore(op, "m_arch")) == len(old)
    months = sorted(p.name for p in (tmp_path / f"readings/operator={op}/meter=m_arch").iterdir())
    assert months == ["month=2026-07", "month=2026-08"]


def test_archive_keys_are_partitioned_for_query_engines() -> None:
    key = archive_key("riverside", "m_a101", "2026-08", 1, 2)
    assert key == "readings/operator=riverside/meter=m_a101/month=2026-08/1-2.jsonl.gz"
