"""Operators, sites, buildings, units, collectors and meters in the main table."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

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
from chalicelib.domain.errors import Conflict, NotFound
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
    SiteNode,
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
        item = _site_item(site)
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
        self._insert([_building_item(building)], record, what=f"building {building.building_id} already exists")

    def list_buildings(self, operator_id: str, site_id: str) -> list[Building]:
        items = BuildingItem.query(site_pk(operator_id, site_id), BuildingItem.sk.startswith("BLDG#"))
        return [Building(operator_id, site_id, i.building_id, i.name, tuple(str(f) for f in i.floors or []))
                for i in items]

    # -- units, collectors, meters -----------------------------------------------------------
    def add_units(self, units: Iterable[Unit]) -> None:
        self._batch_put(_unit_item(u) for u in units)

    def list_units(self, operator_id: str, site_id: str) -> list[Unit]:
        items = UnitItem.query(site_pk(operator_id, site_id), UnitItem.sk.startswith("UNIT#"))
        return [Unit(operator_id, site_id, i.unit_id, i.building_id, i.floor, i.number) for i in items]

    def add_collectors(self, collectors: Iterable[Collector]) -> None:
        self._batch_put(_collector_item(c) for c in collectors)

    def list_collectors(self, operator_id: str, site_id: str) -> list[Collector]:
        items = CollectorItem.query(site_pk(operator_id, site_id), CollectorItem.sk.startswith("COLL#"))
        return [Collector(operator_id, site_id, i.collector_id, i.name, Transport(i.transport), i.host, i.port,
                          i.building_id) for i in items]

    def add_meters(self, meters: Iterable[Meter]) -> None:
        self._batch_put(_meter_item(m) for m in meters)

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

    # -- one change from the settings pages, with its log record in the same transaction ---------
    def put_node(self, node: SiteNode, record: OperationRecord, *, create: bool) -> None:
        """Create (the key must be free: Conflict otherwise) or replace (the key must still exist: NotFound
        otherwise) one site, building, unit, collector or meter. A new site goes through ``add_site``, which
        also registers it for the schedulers."""
        if create and isinstance(node, Site):
            self.add_site(node, record)
            return
        item = _node_item(node)
        if create:
            self._insert([item], record, what=f"{_node_name(node)} already exists")
            return
        self._write_existing(item, record, what=_node_name(node), delete=False)

    def remove_node(self, node: Building | Unit | Collector | Meter, record: OperationRecord) -> None:
        """Delete one building, unit, collector or meter (NotFound when it is gone already)."""
        self._write_existing(_node_item(node), record, what=_node_name(node), delete=True)

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

    def _write_existing(self, item: MainItem, record: OperationRecord, *, what: str, delete: bool) -> None:
        try:
            with TransactWrite(connection=self._connection) as transaction:
                if delete:
                    transaction.delete(item, condition=MainItem.pk.exists())
                else:
                    transaction.save(item, condition=MainItem.pk.exists())
                add_to_transaction(transaction, record)
        except TransactWriteError as exc:
            if "ConditionalCheckFailed" in str(exc.cancellation_reasons):
                raise NotFound(f"{what} no longer exists") from exc
            raise

    def _batch_put(self, items: Iterable[MainItem]) -> None:
        with MainItem.batch_write() as batch:
            for item in items:
                batch.save(item)


def _to_meter(operator_id: str, site_id: str, item: MeterItem) -> Meter:
    return Meter(operator_id, site_id, item.meter_id, item.serial, item.model, item.collector_id, item.address,
                 item.unit_id, BillingMode(item.billing_mode), item.ct_ratio, _kw(item.overload_threshold_kw),
                 item.alarm_amount_1_minor, item.alarm_amount_2_minor, item.hoarding_limit_minor)


def _to_site(operator_id: str, item: SiteItem) -> Site:
    return Site(operator_id, item.site_id, item.name, item.address, item.reading_interval_s, item.alarm_amount_1_minor,
                item.alarm_amount_2_minor, item.alarm_sms_number or "", item.hoarding_limit_minor,
                _kw(item.overload_threshold_kw))


def _kw(stored: Decimal | None) -> Decimal | None:
    """DynamoDB keeps 12.50 as 12.5: thresholds come back at the register's 0.01 kW, as they were given."""
    return None if stored is None else stored.quantize(Decimal("0.01"))


def _site_item(site: Site) -> SiteItem:
    return SiteItem(pk=operator_pk(site.operator_id), sk=f"SITE#{site.site_id}", site_id=site.site_id,
                    name=site.name, address=site.address, reading_interval_s=site.reading_interval_s,
                    alarm_amount_1_minor=site.alarm_amount_1_minor, alarm_amount_2_minor=site.alarm_amount_2_minor,
                    alarm_sms_number=site.alarm_sms_number, hoarding_limit_minor=site.hoarding_limit_minor,
                    overload_threshold_kw=site.overload_threshold_kw)


def _building_item(building: Building) -> BuildingItem:
    return BuildingItem(pk=site_pk(building.operator_id, building.site_id), sk=f"BLDG#{building.building_id}",
                        building_id=building.building_id, name=building.name, floors=list(building.floors))


def _unit_item(unit: Unit) -> UnitItem:
    return UnitItem(pk=site_pk(unit.operator_id, unit.site_id), sk=f"UNIT#{unit.unit_id}", unit_id=unit.unit_id,
                    building_id=unit.building_id, floor=unit.floor, number=unit.number)


def _collector_item(collector: Collector) -> CollectorItem:
    return CollectorItem(pk=site_pk(collector.operator_id, collector.site_id), sk=f"COLL#{collector.collector_id}",
                         collector_id=collector.collector_id, name=collector.name,
                         transport=collector.transport.value, host=collector.host, port=collector.port,
                         building_id=collector.building_id)


def _meter_item(meter: Meter) -> MeterItem:
    return MeterItem(pk=site_pk(meter.operator_id, meter.site_id), sk=f"METER#{meter.meter_id}",
                     meter_id=meter.meter_id, serial=meter.serial, model=meter.model, collector_id=meter.collector_id,
                     address=meter.address, unit_id=meter.unit_id, billing_mode=meter.billing_mode.value,
                     ct_ratio=meter.ct_ratio, overload_threshold_kw=meter.overload_threshold_kw,
                     alarm_amount_1_minor=meter.alarm_amount_1_minor, alarm_amount_2_minor=meter.alarm_amount_2_minor,
                     hoarding_limit_minor=meter.hoarding_limit_minor)


def _node_item(node: SiteNode) -> MainItem:
    if isinstance(node, Site):
        return _site_item(node)
    if isinstance(node, Building):
        return _building_item(node)
    if isinstance(node, Unit):
        return _unit_item(node)
    if isinstance(node, Collector):
        return _collector_item(node)
    return _meter_item(node)


def _node_name(node: SiteNode) -> str:
    if isinstance(node, Site):
        return f"site {node.site_id}"
    if isinstance(node, Building):
        return f"building {node.building_id}"
    if isinstance(node, Unit):
        return f"unit {node.unit_id}"
    if isinstance(node, Collector):
        return f"collector {node.collector_id}"
    return f"meter {node.meter_id}"
