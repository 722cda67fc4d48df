"""Settings, built once from the environment. Importing this module reads nothing."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Settings:
    stage: str
    table_prefix: str
    ddb_host: str | None
    region: str
    session_secret: str
    session_ttl_seconds: int
    cookie_secure: bool
    base_path: str
    default_locale: str

    ws_management_url: str | None = None
    archive_bucket: str | None = None
    archive_dir: str = ".local/archive"
    sms_via_sns: bool = False

    @property
    def main_table(self) -> str:
        return f"{self.table_prefix}main"

    @property
    def readings_table(self) -> str:
        return f"{self.table_prefix}readings"


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    return default if raw is None else raw.strip().lower() in {"1", "true", "yes", "on"}


def settings_from_env() -> Settings:
    secret = os.environ.get("VOLTVEND_SESSION_SECRET", "")
    if len(secret) < 32:
        raise RuntimeError("VOLTVEND_SESSION_SECRET must be set to at least 32 characters")
    return Settings(
        stage=os.environ.get("VOLTVEND_STAGE", "local"),
        table_prefix=os.environ.get("VOLTVEND_TABLE_PREFIX", "voltvend-"),
        ddb_host=os.environ.get("DDB_HOST") or None,
        region=os.environ.get("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION", "us-east-1")),
        session_secret=secret,
        session_ttl_seconds=int(os.environ.get("VOLTVEND_SESSION_TTL", "28800")),
        cookie_secure=_flag("VOLTVEND_COOKIE_SECURE", True),
        base_path=os.environ.get("VOLTVEND_BASE_PATH", "").rstrip("/"),
        default_locale=os.environ.get("VOLTVEND_DEFAULT_LOCALE", "en"),
        ws_management_url=os.environ.get("VOLTVEND_WS_MANAGEMENT_URL") or None,
        archive_bucket=os.environ.get("VOLTVEND_ARCHIVE_BUCKET") or None,
        archive_dir=os.environ.get("VOLTVEND_ARCHIVE_DIR", ".local/archive"),
        sms_via_sns=os.environ.get("VOLTVEND_SMS", "outbox") == "sns",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return settings_from_env()
