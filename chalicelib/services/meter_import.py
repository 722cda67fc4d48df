"""Bulk import of meters into a site from CSV or Excel (SPEC 8), checked row by row, imported all or nothing.

*Checking* reads the file (CSV here, .xlsx through the SpreadsheetReader port), then checks every row against
the rules (chalicelib/domain/meter_import.py) and the site as stored now: its collectors, buildings and units,
its meters' bus addresses, and every meter id and serial of the operator (readings are keyed by operator and
meter id, so ids are unique across sites). A check writes nothing. An import checks again, always: the site may
have changed since the operator looked at the report.

*All or nothing.* DynamoDB's TransactWriteItems carries at most 100 items and a file may hold a few hundred
meters (5,000 rows at most), so one transaction cannot carry every import. The writer
(adapters/dynamodb/meter_import_store.py) uses a journal and compensation:

1. An import that fits in one transaction (98 items with its log record and a check that no other import is
   open) is written in one, atomically.
2. A larger one opens with a transaction that puts the site's *journal* item (conditional on absence: one
   import per site at a time) listing every key the import will write, together with the first items. Each
   unit and meter is put only if its key is free, and is tagged with the import's id.
3. Middle transactions put up to 100 items each. The last puts the rest, deletes the journal (only if it is
   still ours) and appends the operation-log record: the import is committed exactly when that record exists.
4. If any transaction fails, the writer deletes every journal key that still carries this import's tag (so it
   never removes what somebody else wrote), removes the journal and logs ``meter.import_rolled_back``. The
   operator sees "nothing was imported" (409 when a key was taken meanwhile, 503 otherwise).
5. If the process dies before it can compensate (a Lambda timeout, a crash), the journal stays. Any later check
   or import on that site finds it; once it is older than any Lambda invocation can live (16 minutes), it rolls
   the import back first. Until then a new import on that site is refused with a clear message.

What this does not hide: during the second or so that an import of several transactions takes, other readers
can already see its first meters; if it fails, they disappear again. Bus addresses are checked against the
stored meters when the import starts; two imports cannot interleave (the journal), but a meter added by hand to
the same bus in that second is not re-checked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

from chalicelib.domain.access import Permission
from chalicelib.domain.actor import Actor
from chalicelib.domain.errors import Conflict
from chalicelib.domain.meter_import import (
    HEADER_SEARCH_ROWS,
    MAX_COLUMNS,
    MAX_ROWS,
    ImportInvalid,
    ImportJournal,
    ImportPlan,
    MeterImportBatch,
    ModelInfo,
    SiteContext,
    plan_import,
    read_csv,
    sheet_from_rows,
    sniff_format,
    template_csv,
)
from chalicelib.domain.tenancy import Collector, Site, new_id
from chalicelib.ports import Clock, MeterImportWriter, SpreadsheetReader, TenancyRepository
from chalicelib.services.audit import operation
from chalicelib.services.scoping import site_in_scope

STALE_IMPORT = timedelta(minutes=16)  # longer than Lambda's 15-minute ceiling: its writer is surely gone
LOGGED_METER_IDS = 300  # the log record names the meters, up to this many (an item holds 400 KB)


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


@dataclass(frozen=True)
class ImportSetup:
    """What the upload page shows beside the form."""

    site: Site
    collectors: list[Collector]
    models: list[str]
    running: ImportJournal | None


@lru_cache(maxsize=1)
def _model_names() -> tuple[str, ...]:
    from gateway_bridge.profiles import available_models

    return tuple(available_models())


def resolve_model(text: str) -> ModelInfo | None:
    """A model by its profile's name or file name, any case (what ``reading_plan.profile_for`` accepts)."""
    from gateway_bridge.profiles import ProfileError

    from chalicelib.services.reading_plan import profile_for

    try:
        profile = profile_for(text.strip().upper())
    except ProfileError:
        return None
    return ModelInfo(profile.model, profile.prepaid)


class MeterImportService:
    def __init__(self, tenancy: TenancyRepository, writer: MeterImportWriter, spreadsheets: SpreadsheetReader,
                 clock: Clock) -> None:
        self._tenancy = tenancy
        self._writer = writer
        self._spreadsheets = spreadsheets
        self._clock = clock

    def setup(self, actor: Actor, site_id: str) -> ImportSetup:
        actor.require(Permission.SETTINGS_MANAGE)
        site = site_in_scope(self._tenancy, actor, site_id)
        running = self._recover_stale(actor, site_id)
        return ImportSetup(site, sorted(self._tenancy.list_collectors(actor.operator_id, site_id),
                                        key=lambda c: c.collector_id), list(_model_names()), running)

    def template(self, actor: Actor, site_id: str, language: str) -> str:
        actor.require(Permission.SETTINGS_MANAGE)
        site_in_scope(self._tenancy, actor, site_id)
        return template_csv(language)

    def check(self, actor: Actor, site_id: str, upload: Upload) -> ImportPlan:
        """The validation report; writes nothing."""
        actor.require(Permission.SETTINGS_MANAGE)
        site_in_scope(self._tenancy, actor, site_id)
        self._recover_stale(actor, site_id)
        return self._plan(actor, site_id, upload)

    def run(self, actor: Actor, site_id: str, upload: Upload) -> ImportPlan:
        """Check, then write every meter (and declared unit) or none; raises ImportInvalid with the report."""
        actor.require(Permission.SETTINGS_MANAGE)
        site_in_scope(self._tenancy, actor, site_id)
        running = self._recover_stale(actor, site_id)
        if running is not None:
            raise Conflict(f"another meter import (by {running.actor}) is running on this site since "
                           f"{running.started_at:%H:%M} UTC; try again in a few minutes")
        plan = self._plan(actor, site_id, upload)
        if not plan.ok:
            raise ImportInvalid(plan)
        self._writer.import_meters(self._batch(actor, site_id, upload, plan))
        return plan

    def _plan(self, actor: Actor, site_id: str, upload: Upload) -> ImportPlan:
        if sniff_format(upload.data) == "xlsx":
            rows = self._spreadsheets.rows(upload.data, max_rows=MAX_ROWS + HEADER_SEARCH_ROWS + 1,
                                           max_columns=MAX_COLUMNS)
            sheet = sheet_from_rows(rows)
        else:
            sheet = read_csv(upload.data)
        return plan_import(sheet, self._context(actor.operator_id, site_id), lambda: new_id("unit"))

    def _context(self, operator_id: str, site_id: str) -> SiteContext:
        site_meters = self._tenancy.list_meters(operator_id, site_id)
        others = [m for s in self._tenancy.list_sites(operator_id) if s.site_id != site_id
                  for m in self._tenancy.list_meters(operator_id, s.site_id)]
        return SiteContext(operator_id, site_id, self._tenancy.list_buildings(operator_id, site_id),
                           self._tenancy.list_units(operator_id, site_id),
                           self._tenancy.list_collectors(operator_id, site_id), site_meters, site_meters + others,
                           resolve_model, _model_names())

    def _batch(self, actor: Actor, site_id: str, upload: Upload, plan: ImportPlan) -> MeterImportBatch:
        now, import_id = self._clock.now(), new_id("imp")
        summary = {"file": upload.filename[:120], "meters": len(plan.meters), "units_created": len(plan.units)}
        details: Mapping[str, Any] = {
            "import_id": import_id,
            "meter_ids": [m.meter_id for m in plan.meters[:LOGGED_METER_IDS]],
            "meters_not_named": max(0, len(plan.meters) - LOGGED_METER_IDS),
            "by_collector": dict(Counter(m.collector_id for m in plan.meters)),
        }
        record = operation(actor.operator_id, actor.username, "meter.import", f"site:{site_id}", now,
                           after=summary, source_ip=actor.source_ip, **details)
        undo = operation(actor.operator_id, actor.username, "meter.import_rolled_back", f"site:{site_id}", now,
                         after={**summary, "meters": 0, "units_created": 0}, source_ip=actor.source_ip,
                         import_id=import_id)
        return MeterImportBatch(actor.operator_id, site_id, import_id, now, actor.username, plan.units, plan.meters,
                                record, undo)

    def _recover_stale(self, actor: Actor, site_id: str) -> ImportJournal | None:
        """Roll back an import whose writer died; the journal of one still running is returned."""
        journal = self._writer.running_meter_import(actor.operator_id, site_id)
        if journal is None or self._clock.now() - journal.started_at < STALE_IMPORT:
            return journal
        record = operation(actor.operator_id, actor.username, "meter.import_rolled_back", f"site:{site_id}",
                           self._clock.now(), after={"meters": 0, "abandoned_by": journal.actor},
                           source_ip=actor.source_ip, import_id=journal.import_id)
        self._writer.undo_meter_import(journal, record)
        return None
