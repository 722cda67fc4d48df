"""Back-office operators in the main table; every change commits together with its log record."""

from __future__ import annotations

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.dynamodb.keys import operator_pk, staff_sk
from chalicelib.adapters.dynamodb.models import StaffItem
from chalicelib.adapters.dynamodb.oplog_repo import add_to_transaction
from chalicelib.domain.access import Grant, Permission, Role
from chalicelib.domain.errors import Conflict
from chalicelib.domain.oplog import OperationRecord
from chalicelib.domain.staff import StaffStatus, StaffUser


def user_to_item(user: StaffUser) -> StaffItem:
    item = StaffItem(
        pk=operator_pk(user.operator_id),
        sk=staff_sk(user.username),
        username=user.username,
        display_name=user.display_name,
        password_hash=user.password_hash,
        role=user.grant.role.value,
        extra_permissions=sorted(p.value for p in user.grant.extra),
        sites=sorted(user.grant.sites),
        status=user.status.value,
        must_change_password=user.must_change_password,
        failed_logins=user.failed_logins,
        locked_until=user.locked_until,
        created_at=user.created_at,
    )
    if user.version:
        item.version = user.version
    return item


def item_to_user(operator_id: str, item: StaffItem) -> StaffUser:
    grant = Grant(
        role=Role(item.role),
        extra=frozenset(Permission(str(p)) for p in item.extra_permissions or []),
        sites=frozenset(str(s) for s in item.sites or []),
    )
    return StaffUser(
        operator_id=operator_id,
        username=item.username,
        display_name=item.display_name,
        password_hash=item.password_hash,
        grant=grant,
        status=StaffStatus(item.status),
        must_change_password=bool(item.must_change_password),
        failed_logins=item.failed_logins or 0,
        locked_until=item.locked_until,
        created_at=item.created_at,
        version=item.version or 0,
    )


class DynamoStaffRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def get(self, operator_id: str, username: str) -> StaffUser | None:
        try:
            item = StaffItem.get(operator_pk(operator_id), staff_sk(username), consistent_read=True)
        except StaffItem.DoesNotExist:
            return None
        return item_to_user(operator_id, item)

    def list(self, operator_id: str) -> list[StaffUser]:
        items = StaffItem.query(operator_pk(operator_id), StaffItem.sk.startswith("STAFF#"))
        return [item_to_user(operator_id, item) for item in items]

    def create(self, user: StaffUser, record: OperationRecord) -> None:
        item = user_to_item(user)
        self._commit(item, record, what=f"operator {user.username} already exists")

    def save(self, user: StaffUser, record: OperationRecord | None) -> StaffUser:
        """Write a changed user, only if nobody changed it since it was read (its version)."""
        item = user_to_item(user)
        self._commit(item, record, what=f"operator {user.username} was changed by someone else; reload")
        return item_to_user(user.operator_id, item)

    def _commit(self, item: StaffItem, record: OperationRecord | None, *, what: str) -> None:
        try:
            with TransactWrite(connection=self._connection) as transaction:
                transaction.save(item)  # VersionAttribute adds the version (or not-exists) condition
                if record is not None:
                    add_to_transaction(transaction, record)
        except TransactWriteError as exc:
            if "ConditionalCheckFailed" in str(exc.cancellation_reasons):
                raise Conflict(what) from exc
            raise
