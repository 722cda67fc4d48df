"""Signed, expiring tokens for the session cookie, bearer tokens and the log-in form's CSRF cookie."""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeTimedSerializer


class TokenSigner:
    def __init__(self, secret: str, max_age_seconds: int) -> None:
        self._session = URLSafeTimedSerializer(secret, salt="voltvend.session")
        self._login_csrf = URLSafeTimedSerializer(secret, salt="voltvend.login-csrf")
        self._max_age = max_age_seconds

    def session_token(self, operator_id: str, session_id: str) -> str:
        return self._session.dumps([operator_id, session_id])

    def read_session_token(self, token: str) -> tuple[str, str] | None:
        try:
            value = self._session.loads(token, max_age=self._max_age)
        except BadSignature:  # also covers SignatureExpired
            return None
        if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
            return value[0], value[1]
        return None

    def login_csrf_token(self, nonce: str) -> str:
        return self._login_csrf.dumps(nonce)

    def login_csrf_ok(self, token: str, nonce: str) -> bool:
        try:
            return bool(self._login_csrf.loads(token, max_age=3600) == nonce)
        except BadSignature:
            return False
