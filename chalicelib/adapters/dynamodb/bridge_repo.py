"""Bridges, their WebSocket connections and the per-collector tunnel state."""

from __future__ import annotations

from datetime import datetime

from pynamodb.connection import Connection
from pynamodb.exceptions import DeleteError, PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.dynamodb.keys import operator_pk, site_pk
from chalicelib.adapters.dynamodb.models import BridgeItem, ConnectionItem, MainItem, SendLockItem, TunnelItem
from chalicelib.adapters.dynamodb.oplog_repo import add_to_transaction
from chalicelib.domain.bridges import Bridge, BridgeConnection, BridgeStatus, TunnelState
from chalicelib.domain.errors import Conflict
from chalicelib.domain.oplog import OperationRecord
from chalicelib.ports import StaleTunnelState


def _to_bridge(operator_id: str, item: BridgeItem) -> Bridge:
    return Bridge(operator_id, item.bridge_id, item.site_id, tuple(str(c) for c in item.collectors or []),
                  item.credential_digest, BridgeStatus(item.status), item.last_seen, item.connection_id)


class DynamoBridgeRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    # -- bridges -----------------------------------------------------------------------------
    def register(self, bridge: Bridge, tunnels: list[TunnelState], record: OperationRecord) -> None:
        """The bridge and its collectors' key rings, all or nothing."""
        item = BridgeItem(pk=operator_pk(bridge.operator_id), sk=f"BRIDGE#{bridge.bridge_id}",
                          bridge_id=bridge.bridge_id, site_id=bridge.site_id, collectors=list(bridge.collectors),
                          credential_digest=bridge.credential_digest, status=bridge.status.value)
        try:
            with TransactWrite(connection=self._connection) as transaction:
                transaction.save(item, condition=MainItem.pk.does_not_exist())
                for tunnel in tunnels:
                    transaction.save(self._tunnel_item(bridge.operator_id, bridge.site_id, tunnel))
                add_to_transaction(transaction, record)
        except TransactWriteError as exc:
            raise Conflict(f"bridge {bridge.bridge_id} already exists") from exc

    def get(self, operator_id: str, bridge_id: str) -> Bridge | None:
        try:
            return _to_bridge(operator_id, BridgeItem.get(operator_pk(operator_id), f"BRIDGE#{bridge_id}"))
        except BridgeItem.DoesNotExist:
            return None

    def list(self, operator_id: str) -> list[Bridge]:
        items = BridgeItem.query(operator_pk(operator_id), BridgeItem.sk.startswith("BRIDGE#"))
        return [_to_bridge(operator_id, item) for item in items]

    def set_status(self, operator_id: str, bridge_id: str, status: BridgeStatus, record: OperationRecord) -> None:
        item = BridgeItem(pk=operator_pk(operator_id), sk=f"BRIDGE#{bridge_id}")
        with TransactWrite(connection=self._connection) as transaction:
            transaction.update(item, actions=[BridgeItem.status.set(status.value)],
                               condition=BridgeItem.pk.exists())
            add_to_transaction(transaction, record)

    def mark_seen(self, operator_id: str, bridge_id: str, at: datetime, connection_id: str) -> None:
        item = BridgeItem(pk=operator_pk(operator_id), sk=f"BRIDGE#{bridge_id}")
        item.update(actions=[BridgeItem.last_seen.set(at), BridgeItem.connection_id.set(connection_id)],
                    condition=BridgeItem.pk.exists())

    def mark_disconnected(self, operator_id: str, bridge_id: str, connection_id: str) -> None:
        """Forget the connection only if it is still the bridge's current one (a reconnect may have won)."""
        item = BridgeItem(pk=operator_pk(operator_id), sk=f"BRIDGE#{bridge_id}")
        try:
            item.update(actions=[BridgeItem.connection_id.remove()],
                        condition=BridgeItem.connection_id == connection_id)
        except UpdateError as error:
            if "ConditionalCheckFailed" not in str(error):
                raise
            # a newer connection owns the bridge now: nothing to undo

    # -- connections -------------------------------------------------------------------------
    def put_connection(self, link: BridgeConnection, at: datetime) -> None:
        ConnectionItem(pk=f"WSCONN#{link.connection_id}", sk="CONNECTION", operator_id=link.operator_id,
                       bridge_id=link.bridge_id, site_id=link.site_id, connected_at=at).save()

    def get_connection(self, connection_id: str) -> BridgeConnection | None:
        try:
            item = ConnectionItem.get(f"WSCONN#{connection_id}", "CONNECTION")
        except ConnectionItem.DoesNotExist:
            return None
        return BridgeConnection(connection_id, item.operator_id, item.bridge_id, item.site_id)

    def delete_connection(self, connection_id: str) -> None:
        ConnectionItem(pk=f"WSCONN#{connection_id}", sk="CONNECTION").delete()

    # -- tunnel state ------------------------------------------------------------------------
    def load_tunnel(self, operator_id: str, site_id: str, collector_id: str) -> TunnelState | None:
        try:
            item = TunnelItem.get(site_pk(operator_id, site_id), f"TUNNEL#{collector_id}", consistent_read=True)
        except TunnelItem.DoesNotExist:
            return None
        return TunnelState(collector_id, dict(item.keyring), dict(item.inbound), dict(item.outbound),
                           item.version or 0)

    def save_tunnel(self, operator_id: str, site_id: str, tunnel: TunnelState) -> None:
        """Conditional on the version read: two writers can never both use one sequence number."""
        try:
            self._tunnel_item(operator_id, site_id, tunnel).save()
        except PutError as exc:
            if "ConditionalCheckFailed" in str(exc):
                raise StaleTunnelState(tunnel.collector_id) from exc
            raise

    def acquire_send_lock(self, operator_id: str, site_id: str, collector_id: str, holder: str,
                          now_ms: int, hold_ms: int) -> bool:
        """Take the collector's send lock if it is free or its holder's lease ran out."""
        item = SendLockItem(pk=site_pk(operator_id, site_id), sk=f"SENDLOCK#{collector_id}", holder=holder,
                            until_ms=now_ms + hold_ms)
        try:
            item.save(condition=SendLockItem.pk.does_not_exist() | (SendLockItem.until_ms < now_ms))
        except PutError as exc:
            if "ConditionalCheckFailed" in str(exc):
                return False
            raise
        return True

    def release_send_lock(self, operator_id: str, site_id: str, collector_id: str, holder: str) -> None:
        try:
            SendLockItem(pk=site_pk(operator_id, site_id), sk=f"SENDLOCK#{collector_id}").delete(
                condition=SendLockItem.holder == holder)
        except DeleteError:
            return  # the lease ran out and someone else holds it now: theirs to release

    @staticmethod
    def _tunnel_item(operator_id: str, site_id: str, tunnel: TunnelState) -> TunnelItem:
        item = TunnelItem(pk=site_pk(operator_id, site_id), sk=f"TUNNEL#{tunnel.collector_id}",
                          collector_id=tunnel.collector_id, keyring=tunnel.keyring, inbound=tunnel.inbound,
                          outbound=tunnel.outbound)
        if tunnel.version:
            item.version = tunnel.version
        return item
