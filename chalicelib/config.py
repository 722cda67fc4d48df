"""Settings, built once from the environment. Importing this module reads nothing."""

from __future__ import annotations

import hashlib
import hmac
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
    email_via_ses: bool = False
    email_from: str = "Voltvend <no-reply@voltvend.local>"  # in AWS: an address or domain verified in SES
    # Card payments. The app's own address as browsers and the processor reach it, stage path included (checkout
    # return URLs, the local card page and its webhook); Stripe keys switch from the local stand-in to Stripe.
    public_url: str = ""
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None  # a local fake Stripe in tests

    @property
    def webhook_secret(self) -> str:
        """The webhook's signing secret: Stripe's endpoint secret, or without Stripe keys one derived from the
        session secret, which the local stand-in signs with; so no event is ever taken unverified."""
        if self.stripe_webhook_secret:
            return self.stripe_webhook_secret
        digest = hmac.new(self.session_secret.encode(), b"voltvend local webhook", hashlib.sha256).hexdigest()
        return f"whsec_local_{digest[:40]}"

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
        email_via_ses=os.environ.get("VOLTVEND_EMAIL", "outbox") == "ses",
        email_from=os.environ.get("VOLTVEND_EMAIL_FROM") or "Voltvend <no-reply@voltvend.local>",
        public_url=os.environ.get("VOLTVEND_PUBLIC_URL", "").rstrip("/"),
        stripe_secret_key=os.environ.get("VOLTVEND_STRIPE_SECRET_KEY") or None,
        stripe_webhook_secret=os.environ.get("VOLTVEND_STRIPE_WEBHOOK_SECRET") or None,
        stripe_api_base=os.environ.get("VOLTVEND_STRIPE_API_BASE") or None,
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return settings_from_env()
