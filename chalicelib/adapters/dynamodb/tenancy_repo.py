"""Operators, sites, buildings, units, collectors and meters in the main table."""

from __future__ import annotations

from collections.abc import Iterable

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.dynamodb.keys import PLATFORM_PK, operator_pk, site_pk
from chalicelib.adapters.dynamodb.meter_import_store import MeterImportStore
from chalicelib.adapters.dynamodb.models import (
    BuildingItem,
    CollectorItem,
    MainItem,
    MeterItem,
    OperatorItem,
    RegistryItem,
    SiteItem,
    UnitItem,
)
from chalicelib.adapters.dynamodb.oplog_repo import add_to_transaction
from chalicelib.adapters.dynamodb.staff_repo import user_to_item
from chalicelib.domain.errors import Conflict
from chalicelib.domain.meter_import import ImportJournal, MeterImportBatch
from chalicelib.domain.oplog import OperationRecord
from chalicelib.domain.staff import StaffUser
from chalicelib.domain.tenancy import (
    BillingMode,
    Building,
    Collector,
    Meter,
    PropertyOperator,
    Site,
    Transport,
    Unit,
)


class DynamoTenancyRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    # -- operators and the platform registry -------------------------------------------------
    def create_operator(self, operator: PropertyOperator, first_admin: StaffUser,
                        records: list[OperationRecord]) -> None:
        """The company, its registry entry and its first administrator, all or nothing."""
        item = OperatorItem(pk=operator_pk(operator.operator_id), sk="OPERATOR", name=operator.name,
                            currency=operator.currency, timezone=operator.timezone)
        entry = RegistryItem(pk=PLATFORM_PK, sk=f"OP#{operator.operator_id}", operator_id=operator.operator_id)
        admin = user_to_item(first_admin)
        self._insert([item, entry, admin], records, what=f"operator company {operator.operator_id} already exists")

    def get_operator(self, operator_id: str) -> PropertyOperator | None:
        try:
            item = OperatorItem.get(operator_pk(operator_id), "OPERATOR")
        except OperatorItem.DoesNotExist:
            return None
        return PropertyOperator(operator_id, operator_id, item.name, item.currency, item.timezone)

    def operator_ids(self) -> list[str]:
        return [i.operator_id for i in RegistryItem.query(PLATFORM_PK, RegistryItem.sk.startswith("OP#"))]

    # -- sites and buildings -----------------------------------------------------------------
    def add_site(self, site: Site, record: OperationRecord) -> None:
        item = SiteItem(pk=operator_pk(site.operator_id), sk=f"SITE#{site.site_id}", site_id=site.site_id,
                        name=site.name, address=site.address, reading_interval_s=site.reading_interval_s,
                        alarm_amount_1_minor=site.alarm_amount_1_minor, alarm_amount_2_minor=site.alarm_amount_2_minor,
                        alarm_sms_number=site.alarm_sms_number, hoarding_limit_minor=site.hoarding_limit_minor)
        entry = RegistryItem(pk=PLATFORM_PK, sk=f"SITE#{site.operator_id}#{site.site_id}",
                             operator_id=site.operator_id, site_id=site.site_id)
        self._insert([item, entry], record, what=f"site {site.site_id} already exists")

    def list_sites(self, operator_id: str) -> list[Site]:
        items = SiteItem.query(operator_pk(operator_id), SiteItem.sk.startswith("SITE#"))
        return [_to_site(operator_id, i) for i in items]

    def get_site(self, operator_id: str, site_id: str) -> Site | None:
        try:
            item = SiteItem.get(operator_pk(operator_id), f"SITE#{site_id}")
        except SiteItem.DoesNotExist:
            return None
        return _to_site(operator_id, item)

    def add_building(self, building: Building, record: OperationRecord) -> None:
        item = BuildingItem(pk=site_pk(building.operator_id, building.site_id), sk=f"BLDG#{building.building_id}",
                            building_id=building.building_id, name=building.name, floors=list(building.floors))
        self._insert([item], record, what=f"building {building.building_id} already exists")

    def list_buildings(self, operator_id: str, site_id: str) -> list[Building]:
        items = BuildingItem.query(site_pk(operator_id, site_id), BuildingItem.sk.startswith("BLDG#"))
        return [Building(operator_id, site_id, i.building_id, i.name, tuple(str(f) for f in i.floors or []))
                for i in items]

    # -- units, collectors, meters -----------------------------------------------------------
    def add_units(self, units: Iterable[Unit]) -> None:
        self._batch_put(UnitItem(pk=site_pk(u.operator_id, u.site_id), sk=f"UNIT#{u.unit_id}", unit_id=u.unit_id,
                                 building_id=u.building_id, floor=u.floor, number=u.number) for u in units)

    def list_units(self, operator_id: str, site_id: str) -> list[Unit]:
        items = UnitItem.query(site_pk(operator_id, site_id), UnitItem.sk.startswith("UNIT#"))
        return [Unit(operator_id, site_id, i.unit_id, i.building_id, i.floor, i.number) for i in items]

    def add_collectors(self, collectors: Iterable[Collector]) -> None:
        self._batch_put(
            CollectorItem(pk=site_pk(c.operator_id, c.site_id), sk=f"COLL#{c.collector_id}",
                          collector_id=c.collector_id, name=c.name, transport=c.transport.value, host=c.host,
                          port=c.port, building_id=c.building_id)
            for c in collectors
        )

    def list_collectors(self, operator_id: str, site_id: str) -> list[Collector]:
        items = CollectorItem.query(site_pk(operator_id, site_id), CollectorItem.sk.startswith("COLL#"))
        return [Collector(operator_id, site_id, i.collector_id, i.name, Transport(i.transport), i.host, i.port,
                          i.building_id) for i in items]

    def add_meters(self, meters: Iterable[Meter]) -> None:
        self._batch_put(
            MeterItem(pk=site_pk(m.operator_id, m.site_id), sk=f"METER#{m.meter_id}", meter_id=m.meter_id,
                      serial=m.serial, model=m.model, collector_id=m.collector_id, address=m.address,
                      unit_id=m.unit_id, billing_mode=m.billing_mode.value, ct_ratio=m.ct_ratio)
            for m in meters
        )

    def list_meters(self, operator_id: str, site_id: str) -> list[Meter]:
        items = MeterItem.query(site_pk(operator_id, site_id), MeterItem.sk.startswith("METER#"))
        return [_to_meter(operator_id, site_id, i) for i in items]

    def get_meters(self, operator_id: str, site_id: str, meter_ids: Iterable[str]) -> list[Meter]:
        keys = [(site_pk(operator_id, site_id), f"METER#{meter_id}") for meter_id in set(meter_ids)]
        return [_to_meter(operator_id, site_id, i) for i in MeterItem.batch_get(keys)] if keys else []

    # -- bulk meter import: all or nothing over several transactions (see meter_import_store.py) --
    def import_meters(self, batch: MeterImportBatch) -> None:
        MeterImportStore(self._connection).import_meters(batch)

    def running_meter_import(self, operator_id: str, site_id: str) -> ImportJournal | None:
        return MeterImportStore(self._connection).running_meter_import(operator_id, site_id)

    def undo_meter_import(self, journal: ImportJournal, record: OperationRecord) -> None:
        MeterImportStore(self._connection).undo_meter_import(journal, record)

    # -- helpers -----------------------------------------------------------------------------
    def _insert(self, items: list[MainItem], records: OperationRecord | list[OperationRecord], *,
                what: str) -> None:
        try:
            with TransactWrite(connection=self._connection) as transaction:
                for item in items:
                    transaction.save(item, condition=MainItem.pk.does_not_exist())
                for record in records if isinstance(records, list) else [records]:
                    add_to_transaction(transaction, record)
        except TransactWriteError as exc:
            if "ConditionalCheckFailed" in str(exc.cancellation_reasons):
                raise Conflict(what) from exc
            raise

    def _batch_put(self, items: Iterable[MainItem]) -> None:
        with MainItem.batch_write() as batch:
            for item in items:
                batch.save(item)


def _to_meter(operator_id: str, site_id: str, item: MeterItem) -> Meter:
    return Meter(operator_id, site_id, item.meter_id, item.serial, item.model, item.collector_id, item.address,
                 item.unit_id, BillingMode(item.billing_mode), item.ct_ratio)


def _to_site(operator_id: str, item: SiteItem) -> Site:
    return Site(operator_id, item.site_id, item.name, item.address, item.reading_interval_s, item.alarm_amount_1_minor,
                item.alarm_amount_2_minor, item.alarm_sms_number or "", item.hoarding_limit_minor)
