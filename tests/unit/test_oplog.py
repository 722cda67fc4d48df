from __future__ import annotations

from chalicelib.domain.oplog import redact


def test_secrets_never_reach_the_log() -> None:
    snapshot = {"username": "amy", "password": "hunter22222", "password_hash": "$argon2id$..."}
    assert redact(snapshot) == {"username": "amy", "password": "***", "password_hash": "***"}
    assert redact(None) is None
