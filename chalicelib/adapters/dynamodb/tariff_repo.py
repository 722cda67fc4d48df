"""Versioned tariffs per site (and per meter where one overrides the site), and meter commands' state."""

from __future__ import annotations

from pynamodb.connection import Connection
from pynamodb.exceptions import PutError

from chalicelib.adapters.dynamodb.keys import site_pk
from chalicelib.adapters.dynamodb.models import CommandItem, TariffItem
from chalicelib.domain.commands import CommandRecord
from chalicelib.domain.errors import Conflict
from chalicelib.domain.tariffs import Tariff, TariffHistory
from chalicelib.domain.tariffs.json_format import tariff_from_json, tariff_to_json


class DynamoTariffRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add_version(self, operator_id: str, site_id: str, scope: str, tariff: Tariff) -> None:
        """Versions are never edited: a second one at the same effective time is a Conflict."""
        item = TariffItem(pk=site_pk(operator_id, site_id), sk=f"TARIFF#{scope}#{tariff.effective_from.isoformat()}",
                          scope=scope, body=tariff_to_json(tariff))
        try:
            item.save(condition=TariffItem.pk.does_not_exist())
        except PutError as error:
            if "ConditionalCheckFailed" in str(error):
                raise Conflict("a version with this effective time exists; versions are never edited") from error
            raise

    def history(self, operator_id: str, site_id: str, scope: str = "site") -> TariffHistory | None:
        return self.histories(operator_id, site_id).get(scope)

    def histories(self, operator_id: str, site_id: str) -> dict[str, TariffHistory]:
        """Every tariff history of a site in one query: ``site`` and each ``meter:<id>`` that overrides it."""
        by_scope: dict[str, list[Tariff]] = {}
        for item in TariffItem.query(site_pk(operator_id, site_id), TariffItem.sk.startswith("TARIFF#")):
            by_scope.setdefault(item.scope, []).append(tariff_from_json(item.body))
        return {scope: TariffHistory(tuple(sorted(versions, key=lambda t: t.effective_from)))
                for scope, versions in by_scope.items()}

    def record_command(self, operator_id: str, site_id: str, record: CommandRecord) -> None:
        CommandItem(pk=site_pk(operator_id, site_id), sk=f"CMD#{record.command_id}", command_kind=record.kind,
                    meter_id=record.meter_id, bus=record.bus, status=record.status, detail=record.detail,
                    expected=record.expected, created_at=record.created_at, updated_at=record.updated_at,
                    batch_id=record.batch_id or None).save()

    def command(self, operator_id: str, site_id: str, command_id: str) -> CommandRecord | None:
        try:
            item = CommandItem.get(site_pk(operator_id, site_id), f"CMD#{command_id}")
        except CommandItem.DoesNotExist:
            return None
        return _record(item)

    def commands(self, operator_id: str, site_id: str) -> list[CommandRecord]:
        items = CommandItem.query(site_pk(operator_id, site_id), CommandItem.sk.startswith("CMD#"))
        return sorted((_record(i) for i in items), key=lambda r: r.created_at, reverse=True)


def _record(item: CommandItem) -> CommandRecord:
    return CommandRecord(item.sk.removeprefix("CMD#"), item.command_kind, item.meter_id, item.bus, item.status,
                         item.detail or "", item.created_at, item.updated_at,
                         dict(item.expected) if item.expected else None, item.batch_id or "")
