"""The tenancy tree: property operator → sites → buildings → floors → units; collectors; meters; customers.

Every object carries the id of the property operator (the SaaS tenant) that owns it; storage keys
lead with it, and services take it from the resolved request context, never from client input.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from chalicelib.domain.errors import ValidationError

CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,30}$")
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_METERS_PER_BUS = 32


def new_id(prefix: str) -> str:
    """A short random id with a readable prefix, e.g. ``site_3f9a1c0d7b2e``."""
    return f"{prefix}_{secrets.token_hex(6)}"


def check_id(value: str, *, field: str) -> str:
    """Ids arrive from URLs and forms: refuse anything that could smuggle a key separator."""
    if not ID_PATTERN.match(value or ""):
        raise ValidationError(f"{field}: not a valid id", field=field)
    return value


def validate_code(code: str) -> str:
    cleaned = code.strip().lower()
    if not CODE_PATTERN.match(cleaned):
        raise ValidationError("company code: 2-31 lower-case letters, digits or dashes", field="company")
    return cleaned


def validate_name(name: str, *, field: str = "name", longest: int = 120) -> str:
    cleaned = " ".join(name.split())
    if not 1 <= len(cleaned) <= longest:
        raise ValidationError(f"{field}: 1-{longest} characters", field=field)
    return cleaned


class BillingMode(StrEnum):
    PREPAID_METER = "prepaid"  # the meter holds the balance (DTSY1352 class)
    CLOUD_BILLED = "cloud"  # a plain meter; the cloud prices and debits


class Transport(StrEnum):
    MODBUS_TCP = "tcp"
    RTU_OVER_TCP = "rtutcp"
    SERIAL = "serial"


@dataclass(frozen=True)
class PropertyOperator:
    operator_id: str
    code: str
    name: str
    currency: str = "CNY"
    timezone: str = "Asia/Shanghai"


@dataclass(frozen=True)
class Site:
    operator_id: str
    site_id: str
    name: str
    address: str = ""
    reading_interval_s: int = 1800
    alarm_amount_1_minor: int = 5000  # site defaults (SPEC 10); a meter may override them
    alarm_amount_2_minor: int = 2000
    alarm_sms_number: str = ""
    hoarding_limit_minor: int = 500_000  # the most credit one meter may hold (SPEC 10); the meter checks it too
    overload_threshold_kw: Decimal | None = None  # default power threshold (SPEC 10); None: no threshold set

    def __post_init__(self) -> None:
        if not 60 <= self.reading_interval_s <= 86400:
            raise ValidationError("reading interval: 1 minute to 1 day", field="reading_interval_s")
        if self.hoarding_limit_minor <= 0:
            raise ValidationError("the hoarding limit must be positive", field="hoarding_limit")


@dataclass(frozen=True)
class Building:
    operator_id: str
    site_id: str
    building_id: str
    name: str
    floors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Unit:
    """A shop or room (SPEC 9: building, floor, unit number)."""

    operator_id: str
    site_id: str
    unit_id: str
    building_id: str
    floor: str
    number: str


@dataclass(frozen=True)
class Collector:
    """An RS485-to-Ethernet communication manager; one bus behind it."""

    operator_id: str
    site_id: str
    collector_id: str
    name: str
    transport: Transport
    host: str
    port: int
    building_id: str = ""


@dataclass(frozen=True)
class Meter:
    operator_id: str
    site_id: str
    meter_id: str
    serial: str
    model: str
    collector_id: str
    address: int
    unit_id: str
    billing_mode: BillingMode = BillingMode.PREPAID_METER
    ct_ratio: int = 1
    # The meter's own values of the site defaults (SPEC 10); None inherits the site's (domain/settings.py resolves).
    overload_threshold_kw: Decimal | None = None
    alarm_amount_1_minor: int | None = None
    alarm_amount_2_minor: int | None = None
    hoarding_limit_minor: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.address <= 247:
            raise ValidationError("Modbus address must be 1-247", field="address")
        if self.ct_ratio < 1:
            raise ValidationError("CT ratio must be at least 1", field="ct_ratio")


SiteNode = Site | Building | Unit | Collector | Meter  # what the settings pages create, change and remove


def check_bus_capacity(meters_on_bus: int) -> None:
    if meters_on_bus >= MAX_METERS_PER_BUS:
        raise ValidationError(f"a bus carries at most {MAX_METERS_PER_BUS} meters", field="collector_id")
