"""Server-side session records: the signed cookie names one; log-out deletes it at once."""

from __future__ import annotations

from datetime import datetime

from pynamodb.connection import Connection

from chalicelib.adapters.dynamodb.keys import operator_pk, session_sk
from chalicelib.adapters.dynamodb.models import SessionItem
from chalicelib.domain.sessions import Session


def _to_session(operator_id: str, item: SessionItem) -> Session:
    return Session(
        operator_id=operator_id,
        session_id=item.sk.removeprefix("SESSION#"),
        username=item.username,
        csrf_token=item.csrf_token,
        created_at=item.created_at,
        expires_at=item.expires_at,
    )


class DynamoSessionStore:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def put(self, session: Session) -> None:
        SessionItem(
            pk=operator_pk(session.operator_id),
            sk=session_sk(session.session_id),
            username=session.username,
            csrf_token=session.csrf_token,
            created_at=session.created_at,
            expires_at=session.expires_at,
        ).save(condition=SessionItem.pk.does_not_exist())

    def get(self, operator_id: str, session_id: str) -> Session | None:
        try:
            item = SessionItem.get(operator_pk(operator_id), session_sk(session_id))
        except SessionItem.DoesNotExist:
            return None
        return _to_session(operator_id, item)

    def delete(self, operator_id: str, session_id: str) -> None:
        SessionItem(pk=operator_pk(operator_id), sk=session_sk(session_id)).delete()

    def delete_for_user(self, operator_id: str, username: str) -> int:
        """End every session of one operator (disabled, password reset)."""
        doomed = [s for s in self._all(operator_id) if s.username == username]
        for session in doomed:
            self.delete(operator_id, session.session_id)
        return len(doomed)

    def delete_expired(self, operator_id: str, now: datetime) -> int:
        """DynamoDB Local never sweeps TTL and AWS may lag for days: the sweep job calls this."""
        doomed = [s for s in self._all(operator_id) if s.expires_at <= now]
        for session in doomed:
            self.delete(operator_id, session.session_id)
        return len(doomed)

    def _all(self, operator_id: str) -> list[Session]:
        items = SessionItem.query(operator_pk(operator_id), SessionItem.sk.startswith("SESSION#"))
        return [_to_session(operator_id, item) for item in items]
