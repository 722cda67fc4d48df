"""Shop tenants, their log-in names, invitations and password resets in the main table.

Keys (under ``OP#<op>``): ``TENANT#<id>``, ``TLOGIN#<phone or e-mail>`` (the claim that makes a log-in unique
within the operator), ``INVITE#<id>``, ``TRESET#<sha256 of the secret>``. A new tenant, its log-in claim and the
invitation it used are written in one transaction, so two people cannot take the same log-in or invitation.
"""

from __future__ import annotations

from datetime import datetime

from pynamodb.connection import Connection
from pynamodb.exceptions import DeleteError, TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.dynamodb.keys import operator_pk
from chalicelib.adapters.dynamodb.models import InvitationItem, ResetItem, TenantItem, TenantLoginItem
from chalicelib.domain.errors import Conflict
from chalicelib.domain.tenants import Invitation, TenantUser


def _tenant_item(user: TenantUser) -> TenantItem:
    item = TenantItem(pk=operator_pk(user.operator_id), sk=f"TENANT#{user.tenant_id}", tenant_id=user.tenant_id,
                      login=user.login, display_name=user.display_name, password_hash=user.password_hash,
                      account_ids=list(user.account_ids), language=user.language, sms_alerts=user.sms_alerts,
                      failed_logins=user.failed_logins, locked_until=user.locked_until, created_at=user.created_at)
    if user.version:
        item.version = user.version
    return item


def _to_tenant(operator_id: str, item: TenantItem) -> TenantUser:
    return TenantUser(operator_id, item.tenant_id, item.login, item.display_name, item.password_hash,
                      tuple(str(a) for a in item.account_ids or []), item.language, bool(item.sms_alerts),
                      item.failed_logins or 0, item.locked_until, item.created_at, item.version or 0)


def _invitation_item(invitation: Invitation) -> InvitationItem:
    return InvitationItem(pk=operator_pk(invitation.operator_id), sk=f"INVITE#{invitation.invitation_id}",
                          account_id=invitation.account_id, created_by=invitation.created_by,
                          created_at=invitation.created_at, expires_at=invitation.expires_at,
                          used_by=invitation.used_by)


class DynamoTenantRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def get(self, operator_id: str, tenant_id: str) -> TenantUser | None:
        try:
            item = TenantItem.get(operator_pk(operator_id), f"TENANT#{tenant_id}", consistent_read=True)
        except TenantItem.DoesNotExist:
            return None
        return _to_tenant(operator_id, item)

    def by_login(self, operator_id: str, login: str) -> TenantUser | None:
        try:
            claim = TenantLoginItem.get(operator_pk(operator_id), f"TLOGIN#{login}", consistent_read=True)
        except TenantLoginItem.DoesNotExist:
            return None
        return self.get(operator_id, claim.tenant_id)

    def list(self, operator_id: str) -> list[TenantUser]:
        items = TenantItem.query(operator_pk(operator_id), TenantItem.sk.startswith("TENANT#"))
        return [_to_tenant(operator_id, item) for item in items]

    def save(self, user: TenantUser, *, invitation: Invitation | None = None, new_login: bool = False) -> None:
        """Write the tenant (conditional on its version), claiming its log-in if new and using up an invitation."""
        try:
            with TransactWrite(connection=self._connection) as transaction:
                transaction.save(_tenant_item(user))
                if new_login:
                    transaction.save(TenantLoginItem(pk=operator_pk(user.operator_id), sk=f"TLOGIN#{user.login}",
                                                     tenant_id=user.tenant_id),
                                     condition=TenantLoginItem.pk.does_not_exist())
                if invitation is not None:
                    transaction.save(_invitation_item(invitation), condition=InvitationItem.used_by.does_not_exist())
        except TransactWriteError as error:
            if "ConditionalCheckFailed" in str(error.cancellation_reasons):
                raise Conflict("that log-in is taken, the invitation was used, or the profile changed meanwhile; "
                               "try again") from error
            raise

    def put_invitation(self, invitation: Invitation) -> None:
        _invitation_item(invitation).save(condition=InvitationItem.pk.does_not_exist())

    def invitation(self, operator_id: str, invitation_id: str) -> Invitation | None:
        try:
            item = InvitationItem.get(operator_pk(operator_id), f"INVITE#{invitation_id}", consistent_read=True)
        except InvitationItem.DoesNotExist:
            return None
        return Invitation(operator_id, invitation_id, item.account_id, item.created_by, item.created_at,
                          item.expires_at, item.used_by)

    def put_reset(self, operator_id: str, secret_hash: str, tenant_id: str, expires_at: datetime) -> None:
        ResetItem(pk=operator_pk(operator_id), sk=f"TRESET#{secret_hash}", tenant_id=tenant_id,
                  expires_at=expires_at, expires=expires_at).save()

    def take_reset(self, operator_id: str, secret_hash: str, now: datetime) -> str | None:
        """The tenant a live reset belongs to; the reset is deleted so it works once."""
        try:
            item = ResetItem.get(operator_pk(operator_id), f"TRESET#{secret_hash}", consistent_read=True)
        except ResetItem.DoesNotExist:
            return None
        try:
            item.delete(condition=ResetItem.pk.exists())  # two clicks racing: only one delete wins
        except DeleteError:
            return None
        return item.tenant_id if item.expires_at > now else None
