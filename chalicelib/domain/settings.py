"""System settings (SPEC 6–10), pure: a site's default parameters, a meter's own overrides of them, and the rules
a change to the site's tree (buildings and floors, units, collectors) must keep.

Inheritance: the site holds the defaults (overload threshold, alarm amounts 1 and 2, hoarding limit, reading
interval, alarm SMS number). A meter may override the overload threshold, either alarm amount and the hoarding
limit, each on its own; None inherits. ``effective_settings`` is the one place that resolves the two, for the alarm
rules, for "write to meters" and for the pages.

Values arrive as form text or JSON (text, integers, or Decimals: the API parses JSON numbers without floats), are
checked here, and every refusal carries a ``code`` so the portal can show it in the operator's language.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from chalicelib.domain.errors import Conflict, PermissionDenied, ValidationError
from chalicelib.domain.money import format_amount, parse_amount
from chalicelib.domain.tenancy import (
    ID_PATTERN,
    Building,
    Collector,
    Meter,
    Site,
    Transport,
    Unit,
)

MAX_AMOUNT_MINOR = 100_000_000  # 1,000,000.00: far above any shop's credit, far below the UINT32 registers
MAX_OVERLOAD_KW = Decimal("655.35")  # the meter's UINT16 register in 0.01 kW
MAX_PRICE = Decimal("1000")  # per kWh; the meter's price registers hold 4 decimals
MAX_FLOORS = 200
MAX_FLOOR_CHARS = 20
MAX_UNIT_CHARS = 40
MAX_ADDRESS_CHARS = 200
MAX_NAME_CHARS = 120
MIN_INTERVAL_S, MAX_INTERVAL_S = 60, 86_400
RATE_NAMES = ("sharp", "peak", "flat", "valley")  # as in domain/tariffs/json_format.py
OVERRIDABLE = ("overload_threshold_kw", "alarm_amount_1_minor", "alarm_amount_2_minor", "hoarding_limit_minor")

_HOST = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")
_IPV6 = re.compile(r"^\[?[0-9A-Fa-f:.]{2,45}\]?$")
_DEVICE = re.compile(r"^(/dev/[A-Za-z0-9/_.:-]{1,200}|COM[0-9]{1,3})$")
_PHONE_SEPARATORS = re.compile(r"[\s()\-.]")
_PHONE = re.compile(r"^\+?[0-9]{5,20}$")
_WHOLE = re.compile(r"^[0-9]{1,9}$")

# English texts of every refusal; the portal shows its own translated text per code (settings_texts.html).
MESSAGES: Mapping[str, str] = {
    "required": "{label} is required",
    "not_text": "{label}: text expected",
    "too_long": "{label}: at most {limit} characters",
    "bad_id": "{label}: 1-64 letters, digits, _ or -",
    "bad_amount": "{label}: an amount like 50.00, from 0 to {max}",
    "bad_interval": "reading interval: 1 minute to 1 day",
    "bad_overload": "overload threshold: a power in kW like 12.5, above 0 and at most 655.35, two decimals at most",
    "bad_sms": "alarm SMS number: 5-20 digits with an optional leading +",
    "bad_price": "default price: a price per kWh like 0.6500, above 0 and at most 1000, four decimals at most",
    "amounts_order": "alarm amount 1 ({alarm_1}) must not be below alarm amount 2 ({alarm_2})",
    "hoarding_low": "the hoarding limit ({hoarding}) must be above alarm amount 1 ({alarm_1})",
    "meters_conflict": "with these defaults, meter {meters} would break its own overrides: {reason}; "
                       "change its overrides first",
    "has_tariff": "the site has a tariff already; add a tariff version to change its prices",
    "duplicate_building": "a building named {value} exists already",
    "bad_floors": "floors: at most 200, each 1-20 characters, separated by commas",
    "duplicate_floor": "floor {value} is listed twice",
    "floor_in_use": "floor {value} still has units ({units}); move or remove them first",
    "building_in_use": "building {value} still has {units} units and {collectors} collectors; "
                       "move or remove them first",
    "unknown_building": "no building {value} on this site",
    "unknown_floor": "building {building} has no floor {value}",
    "duplicate_unit": "unit {value} exists already in building {building}",
    "unit_in_use": "unit {value} is still supplied by meters {meters}; move or remove them first",
    "bad_transport": "transport: tcp, rtutcp or serial",
    "bad_host": "host: an IP address or host name (a device path such as /dev/ttyUSB0 for serial)",
    "bad_port": "port: a whole number from 1 to 65535",
    "duplicate_collector": "a collector named {value} exists already",
    "id_taken": "{value} exists already; choose another ID",
    "collector_in_use": "collector {value} still carries meters {meters}; move or remove them first",
    "collector_bridged": "collector {value} is served by gateway bridge {bridge}; revoke that bridge first",
    "meter_on_account": "meter {value} is on open account {account}; close the account or take the meter off it "
                        "first",
    "credit_on_its_way": "meter {value} still has credit on its way to it; wait until it is delivered",
    "billing_on_account": "meter {value} is on open account {account}: its billing mode cannot change",
    "admin_only": "only an administrator with access to all sites can create a site",
}


class _Coded:
    code: str
    params: Mapping[str, str]


class SettingsInvalid(ValidationError, _Coded):
    """Input that cannot be accepted; ``code`` and ``params`` let the portal say it in the operator's language."""

    def __init__(self, code: str, *, field: str | None = None, **params: object) -> None:
        self.code, self.params = code, {k: str(v) for k, v in params.items()}
        super().__init__(MESSAGES[code].format(**self.params), field=field)


class SettingsRefused(Conflict, _Coded):
    """A change the site's current state forbids (a unit still supplied, a meter on an open account)."""

    def __init__(self, code: str, *, field: str | None = None, **params: object) -> None:
        self.code, self.params = code, {k: str(v) for k, v in params.items()}
        super().__init__(MESSAGES[code].format(**self.params), field=field)


class SettingsForbidden(PermissionDenied, _Coded):
    """The caller may manage settings, but not this (only an administrator over all sites creates a site)."""

    def __init__(self, code: str, **params: object) -> None:
        self.code, self.params = code, {k: str(v) for k, v in params.items()}
        super().__init__(MESSAGES[code].format(**self.params))


# -- effective settings ------------------------------------------------------------------------------

@dataclass(frozen=True)
class EffectiveSettings:
    """What holds for one meter: its own values where it has them, else the site's."""

    overload_threshold_kw: Decimal | None
    alarm_amount_1_minor: int
    alarm_amount_2_minor: int
    hoarding_limit_minor: int
    reading_interval_s: int
    alarm_sms_number: str
    overridden: frozenset[str] = frozenset()  # names (OVERRIDABLE) the meter sets itself

    def register_values(self) -> dict[str, Decimal | int]:
        """The meter registers "write to meters" sets (alarm amounts, hoarding limit, and the overload threshold
        when one is set; without one the meter keeps its own)."""
        values: dict[str, Decimal | int] = {
            "alarm_amount_1": Decimal(self.alarm_amount_1_minor).scaleb(-2),
            "alarm_amount_2": Decimal(self.alarm_amount_2_minor).scaleb(-2),
            "hoarding_limit": Decimal(self.hoarding_limit_minor).scaleb(-2),
        }
        if self.overload_threshold_kw is not None:
            values["overload_threshold"] = self.overload_threshold_kw
        return values


def effective_settings(site: Site, meter: Meter | None = None) -> EffectiveSettings:
    """The site's defaults with ``meter``'s own overrides on top (None on the meter inherits)."""
    own = {name: getattr(meter, name) for name in OVERRIDABLE} if meter is not None else {}
    overridden = frozenset(name for name, value in own.items() if value is not None)

    def pick(name: str) -> Any:
        return own[name] if name in overridden else getattr(site, name)

    return EffectiveSettings(pick("overload_threshold_kw"), pick("alarm_amount_1_minor"), pick("alarm_amount_2_minor"),
                             pick("hoarding_limit_minor"), site.reading_interval_s, site.alarm_sms_number, overridden)


def has_overrides(meter: Meter) -> bool:
    return any(getattr(meter, name) is not None for name in OVERRIDABLE)


def inconsistency(settings: EffectiveSettings) -> tuple[str, dict[str, str]] | None:
    """Why these amounts cannot work together (code and params), or None. Alarm 1 is the earlier warning, so
    it is never below alarm 2 (the alarm rules insist), and a meter must be able to hold more than alarm 1."""
    alarm_1, alarm_2 = settings.alarm_amount_1_minor, settings.alarm_amount_2_minor
    if alarm_1 < alarm_2:
        return "amounts_order", {"alarm_1": format_amount(alarm_1), "alarm_2": format_amount(alarm_2)}
    if settings.hoarding_limit_minor <= alarm_1:
        return "hoarding_low", {"hoarding": format_amount(settings.hoarding_limit_minor),
                                "alarm_1": format_amount(alarm_1)}
    return None


def check_consistent(settings: EffectiveSettings, *, field: str | None = None) -> None:
    problem = inconsistency(settings)
    if problem is not None:
        raise SettingsInvalid(problem[0], field=field or "alarm_amount_1", **problem[1])


# -- parsing one value -------------------------------------------------------------------------------

def _text(value: object) -> str:
    """Form text or a JSON value as trimmed text; floats never arrive (the API parses JSON without them)."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValidationError("expected text or a number")
    return unicodedata.normalize("NFKC", str(value)).strip()


def parse_money(value: object, *, field: str, label: str, optional: bool = False) -> int | None:
    """An amount in minor units, 0 to MAX_AMOUNT_MINOR; blank is None when ``optional`` (a meter inherits)."""
    try:
        text = _text(value)
        if not text:
            if optional:
                return None
            raise SettingsInvalid("required", field=field, label=label)
        minor = parse_amount(text, field=field)
    except SettingsInvalid:
        raise
    except ValidationError:
        minor = -1
    if not 0 <= minor <= MAX_AMOUNT_MINOR:
        raise SettingsInvalid("bad_amount", field=field, label=label, max=format_amount(MAX_AMOUNT_MINOR))
    return minor


def parse_overload(value: object, *, field: str = "overload_threshold_kw") -> Decimal | None:
    """kW above 0 and at most 655.35 with two decimals at most (the register's resolution); blank is None."""
    return _bounded(value, field, "bad_overload", MAX_OVERLOAD_KW, Decimal("0.01"))


def parse_price(value: object, *, field: str = "default_price") -> Decimal | None:
    """A price per kWh above 0, at most MAX_PRICE, four decimals at most (the price registers); blank is None."""
    return _bounded(value, field, "bad_price", MAX_PRICE, Decimal("0.0001"))


def _bounded(value: object, field: str, code: str, upper: Decimal, step: Decimal) -> Decimal | None:
    """A decimal above 0 and at most ``upper`` with no finer digits than ``step``; blank is None."""
    text = _bad_as_marker(value)
    if not text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise SettingsInvalid(code, field=field) from None
    if not number.is_finite() or not Decimal(0) < number <= upper or number != number.quantize(step):
        raise SettingsInvalid(code, field=field)
    return number.quantize(step)


def _bad_as_marker(value: object) -> str:
    """Text of a value; a value of the wrong type becomes text no number parser accepts."""
    try:
        return _text(value)
    except ValidationError:
        return "?"


def _plain_text(value: object, *, field: str, label: str) -> str:
    try:
        return _text(value)
    except ValidationError:
        raise SettingsInvalid("not_text", field=field, label=label) from None


def parse_whole(value: object, *, low: int, high: int, code: str, field: str) -> int:
    text = _bad_as_marker(value)
    number = int(text) if _WHOLE.match(text) else -1
    if not low <= number <= high:
        raise SettingsInvalid(code, field=field)
    return number


def parse_interval(values: Mapping[str, object], current: int) -> int:
    """Seconds, from ``reading_interval_min`` (the form's minutes) or ``reading_interval_s`` (the API)."""
    if "reading_interval_min" in values:
        minutes = parse_whole(values["reading_interval_min"], low=1, high=MAX_INTERVAL_S // 60, code="bad_interval",
                              field="reading_interval")
        return minutes * 60
    if "reading_interval_s" in values:
        return parse_whole(values["reading_interval_s"], low=MIN_INTERVAL_S, high=MAX_INTERVAL_S,
                           code="bad_interval", field="reading_interval")
    return current


def parse_sms_number(value: object) -> str:
    """Digits with an optional leading +; spaces, dashes, dots and brackets people type are dropped."""
    text = _PHONE_SEPARATORS.sub("", _bad_as_marker(value))
    if text and not _PHONE.match(text):
        raise SettingsInvalid("bad_sms", field="alarm_sms_number")
    return text


def parse_name(value: object, *, field: str = "name", label: str = "name", longest: int = MAX_NAME_CHARS,
               required: bool = True) -> str:
    text = " ".join(_plain_text(value, field=field, label=label).split())
    if not text and required:
        raise SettingsInvalid("required", field=field, label=label)
    if len(text) > longest or not text.isprintable():
        raise SettingsInvalid("too_long", field=field, label=label, limit=longest)
    return text


def parse_new_id(value: object, *, field: str, label: str, make: Callable[[], str]) -> str:
    """An id chosen by the operator (letters, digits, _ or -), or a new one when left blank."""
    text = _bad_as_marker(value)
    if not text:
        return make()
    if not ID_PATTERN.match(text):
        raise SettingsInvalid("bad_id", field=field, label=label)
    return text


def parse_floors(value: object) -> tuple[str, ...]:
    """``"B1, 1, 2"`` (a form) or ``["B1", "1", "2"]`` (JSON); order kept, each floor once."""
    if isinstance(value, list):
        parts = [_plain_text(v, field="floors", label="floors") for v in value]
    else:
        parts = _plain_text(value, field="floors", label="floors").replace("，", ",").split(",")
    floors = tuple(" ".join(p.split()) for p in parts if p.strip())
    if len(floors) > MAX_FLOORS or any(len(f) > MAX_FLOOR_CHARS or not f.isprintable() for f in floors):
        raise SettingsInvalid("bad_floors", field="floors")
    seen: set[str] = set()
    for floor in floors:
        if fold(floor) in seen:
            raise SettingsInvalid("duplicate_floor", field="floors", value=floor)
        seen.add(fold(floor))
    return floors


def parse_transport(value: object) -> Transport:
    try:
        return Transport(_bad_as_marker(value).lower())
    except ValueError:
        raise SettingsInvalid("bad_transport", field="transport") from None


def parse_endpoint(transport: Transport, host: object, port: object) -> tuple[str, int]:
    """Host and port of a TCP collector; a serial collector names its device, and its port may be left blank."""
    text = _bad_as_marker(host)
    if transport is Transport.SERIAL:
        if not _DEVICE.match(text):
            raise SettingsInvalid("bad_host", field="host")
        return text, 0 if not _bad_as_marker(port) else parse_whole(port, low=1, high=65535, code="bad_port",
                                                                   field="port")
    if not (_HOST.match(text) or (":" in text and _IPV6.match(text))):
        raise SettingsInvalid("bad_host", field="host")
    return text, parse_whole(port, low=1, high=65535, code="bad_port", field="port")


def fold(text: str) -> str:
    return " ".join(text.split()).casefold()


# -- the site's defaults and a meter's overrides -----------------------------------------------------

def site_with_defaults(site: Site, values: Mapping[str, object]) -> Site:
    """``site`` with the name, address and defaults given in ``values`` (absent keys keep what it has)."""
    def given(key: str, parse: Callable[[object], Any], current: Any) -> Any:
        return parse(values[key]) if key in values else current

    changed: dict[str, Any] = {
        "name": given("name", lambda v: parse_name(v, label="site name"), site.name),
        "address": given("address", lambda v: parse_name(v, field="address", label="address",
                                                         longest=MAX_ADDRESS_CHARS, required=False), site.address),
        "reading_interval_s": parse_interval(values, site.reading_interval_s),
        "overload_threshold_kw": given("overload_threshold_kw", parse_overload, site.overload_threshold_kw),
        "alarm_sms_number": given("alarm_sms_number", parse_sms_number, site.alarm_sms_number),
    }
    for name, key, label in _AMOUNTS:
        changed[name] = parse_money(values[key], field=key, label=label) if key in values else getattr(site, name)
    # Checked before the Site is built, so a hoarding limit of 0 gets the same clear refusal as one below alarm 1.
    check_consistent(EffectiveSettings(changed["overload_threshold_kw"], changed["alarm_amount_1_minor"],
                                       changed["alarm_amount_2_minor"], changed["hoarding_limit_minor"],
                                       changed["reading_interval_s"], changed["alarm_sms_number"]))
    return replace(site, **changed)


_AMOUNTS = (("alarm_amount_1_minor", "alarm_amount_1", "alarm amount 1"),
            ("alarm_amount_2_minor", "alarm_amount_2", "alarm amount 2"),
            ("hoarding_limit_minor", "hoarding_limit", "hoarding limit"))


def meters_broken_by(site: Site, meters: Iterable[Meter]) -> None:
    """Refuse defaults under which a meter's own overrides no longer fit (its alarm 1 below the new alarm 2, say);
    the alarm rules would otherwise have to ignore that meter's overrides."""
    broken = [(m.meter_id, problem) for m in meters if has_overrides(m)
              and (problem := inconsistency(effective_settings(site, m))) is not None]
    if broken:
        code, params = broken[0][1]
        raise SettingsInvalid("meters_conflict", field="alarm_amount_1", meters=", ".join(m for m, _ in broken[:5]),
                              reason=MESSAGES[code].format(**params), reason_code=code, **params)


def meter_with_overrides(meter: Meter, site: Site, values: Mapping[str, object]) -> Meter:
    """``meter`` with its own overload threshold, alarm amounts and hoarding limit from ``values`` (blank inherits
    the site's; absent keys keep what it has), checked together with what it inherits."""
    changed: dict[str, Any] = {}
    if "overload_threshold_kw" in values:
        changed["overload_threshold_kw"] = parse_overload(values["overload_threshold_kw"])
    for name, key, label in _AMOUNTS:
        if key in values:
            changed[name] = parse_money(values[key], field=key, label=label, optional=True)
    result = replace(meter, **changed)
    check_consistent(effective_settings(site, result))
    return result


def flat_tariff(price: Decimal, effective_from: datetime) -> dict[str, Any]:
    """A one-price tariff version in the tariff JSON format (domain/tariffs/json_format.py): the site's default
    price for every rate, all day, no ladder."""
    text = str(price.quantize(Decimal("0.0001")))
    return {"effective_from": effective_from.isoformat(), "prices": dict.fromkeys(RATE_NAMES, text),
            "schedule": None, "ladder": None}


# -- buildings, units, collectors ----------------------------------------------------------------------

def check_building(building: Building, others: Sequence[Building], units: Sequence[Unit]) -> None:
    """Names are unique on the site (imports find buildings by name); a floor with units cannot go."""
    if any(fold(b.name) == fold(building.name) for b in others if b.building_id != building.building_id):
        raise SettingsInvalid("duplicate_building", field="name", value=building.name)
    if not building.floors:
        return  # a building without a floor list takes any floor
    kept = {fold(f) for f in building.floors}
    for unit in units:
        if unit.building_id == building.building_id and fold(unit.floor) not in kept:
            users = sorted(u.number for u in units if u.building_id == building.building_id
                           and fold(u.floor) == fold(unit.floor))
            raise SettingsRefused("floor_in_use", field="floors", value=unit.floor, units=", ".join(users[:5]))


def check_unit(unit: Unit, buildings: Sequence[Building], units: Sequence[Unit]) -> Unit:
    """The building exists, the floor is one of its floors (when it lists them), and the number is unique in the
    building. Returns the unit with the floor spelt as the building spells it."""
    building = next((b for b in buildings if b.building_id == unit.building_id), None)
    if building is None:
        raise SettingsInvalid("unknown_building", field="building_id", value=unit.building_id)
    floor = unit.floor
    if building.floors:
        floor = next((f for f in building.floors if fold(f) == fold(unit.floor)), "")
        if not floor:
            raise SettingsInvalid("unknown_floor", field="floor", value=unit.floor or "-", building=building.name)
    if any(fold(u.number) == fold(unit.number) and u.building_id == unit.building_id and u.unit_id != unit.unit_id
           for u in units):
        raise SettingsInvalid("duplicate_unit", field="number", value=unit.number, building=building.name)
    return replace(unit, floor=floor)


def check_collector(collector: Collector, buildings: Sequence[Building], others: Sequence[Collector]) -> None:
    if collector.building_id and all(b.building_id != collector.building_id for b in buildings):
        raise SettingsInvalid("unknown_building", field="building_id", value=collector.building_id)
    if any(fold(c.name) == fold(collector.name) for c in others if c.collector_id != collector.collector_id):
        raise SettingsInvalid("duplicate_collector", field="name", value=collector.name)


def building_removable(building: Building, units: Sequence[Unit], collectors: Sequence[Collector]) -> None:
    mine = [u for u in units if u.building_id == building.building_id]
    wired = [c for c in collectors if c.building_id == building.building_id]
    if mine or wired:
        raise SettingsRefused("building_in_use", value=building.name, units=len(mine), collectors=len(wired))


def unit_removable(unit: Unit, meters: Sequence[Meter]) -> None:
    supplying = sorted(m.meter_id for m in meters if m.unit_id == unit.unit_id)
    if supplying:
        raise SettingsRefused("unit_in_use", value=unit.number, meters=", ".join(supplying[:5]))


def collector_removable(collector: Collector, meters: Sequence[Meter], bridged_by: str | None) -> None:
    carried = sorted(m.meter_id for m in meters if m.collector_id == collector.collector_id)
    if carried:
        raise SettingsRefused("collector_in_use", value=collector.collector_id, meters=", ".join(carried[:5]))
    if bridged_by is not None:
        raise SettingsRefused("collector_bridged", value=collector.collector_id, bridge=bridged_by)


# -- the operation log's before/after ----------------------------------------------------------------

def snapshot(node: Any) -> dict[str, Any]:
    """A settings object as the operation log keeps it: plain JSON values, without the tenant's own ids."""
    out: dict[str, Any] = {}
    for f in fields(node):
        if f.name == "operator_id":
            continue
        value = getattr(node, f.name)
        if isinstance(value, Enum):
            value = value.value
        elif isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out
