"""The demo's data: one property operator, one site of two buildings, 64 units, 2 collectors, 64 meters.

Idempotent: an existing demo operator is left as it is (its data may have changed since).
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.adapters.clock import SystemClock
from chalicelib.adapters.passwords import Argon2PasswordHasher
from chalicelib.bootstrap import get_services
from chalicelib.domain.access import Grant, Role
from chalicelib.domain.staff import StaffUser
from chalicelib.domain.tenancy import BillingMode, Building, Collector, Meter, Site, Transport, Unit
from chalicelib.services.audit import operation
from chalicelib.services.provisioning import PLATFORM_ACTOR, OperatorOnboarding

DEMO_COMPANY = "riverside"
DEMO_SITE = "site_riverside_park"
FLOORS = ("1", "2", "3", "4")
UNITS_PER_FLOOR = 8
DEMO_READING_INTERVAL_S = 60  # fresh within a minute in the demo; sites default to 30 minutes


@dataclass(frozen=True)
class DemoLogin:
    company: str
    username: str
    password: str
    role: str


DEMO_LOGINS = (
    DemoLogin(DEMO_COMPANY, "admin", "river-park-7351", "administrator"),
    DemoLogin(DEMO_COMPANY, "cashier", "kiosk-till-4826", "cashier"),
    DemoLogin(DEMO_COMPANY, "engineer", "relay-bus-9032", "engineer"),
    DemoLogin(DEMO_COMPANY, "auditor", "ledger-eye-5718", "auditor"),
)


def seed_demo(collector_endpoints: dict[str, tuple[str, int]] | None = None) -> bool:
    """Create the demo operator and its site; returns False when it already existed."""
    services = get_services()
    tenancy, staff_repo = services.tenancy, services.staff_repo
    if tenancy.get_operator(DEMO_COMPANY) is not None:
        return False
    clock, hasher = SystemClock(), Argon2PasswordHasher()
    admin = DEMO_LOGINS[0]
    OperatorOnboarding(tenancy, hasher, clock).onboard(
        DEMO_COMPANY, "Riverside Property Co.", admin.username, admin.password)
    for login in DEMO_LOGINS[1:]:
        user = StaffUser(DEMO_COMPANY, login.username, login.username.capitalize(), hasher.hash(login.password),
                         Grant(Role(login.role)), created_at=clock.now())
        staff_repo.create(user, operation(DEMO_COMPANY, PLATFORM_ACTOR, "staff.create", f"staff:{login.username}",
                                          clock.now(), after=user.public_view()))
    _seed_site(collector_endpoints or {})
    return True


def demo_units() -> list[Unit]:
    return [Unit(DEMO_COMPANY, DEMO_SITE, f"unit_{number.lower()}", building_id, floor, number)
            for building_id, floor, number, _ in _layout()]


def demo_meters() -> list[Meter]:
    return [Meter(DEMO_COMPANY, DEMO_SITE, f"m_{number.lower()}", f"DTSY{'AB'.index(number[0]) + 1}{address:04d}",
                  "DTSY1352", f"coll_{number[0].lower()}", address, f"unit_{number.lower()}", BillingMode.PREPAID_METER)
            for _, _, number, address in _layout()]


def _layout() -> list[tuple[str, str, str, int]]:
    """(building, floor, shop number, bus address): building A's shops on collector A's bus, B's on B's."""
    return [(f"bldg_{letter.lower()}", floor, f"{letter}{floor}{slot:02d}", (int(floor) - 1) * UNITS_PER_FLOOR + slot)
            for letter in "AB" for floor in FLOORS for slot in range(1, UNITS_PER_FLOOR + 1)]


def _seed_site(endpoints: dict[str, tuple[str, int]]) -> None:
    tenancy = get_services().tenancy
    now = SystemClock().now()
    op = DEMO_COMPANY
    tenancy.add_site(Site(op, DEMO_SITE, "Riverside Business Park", "88 Riverside Road", DEMO_READING_INTERVAL_S,
                          alarm_sms_number="+8613800138000"),
                     operation(op, PLATFORM_ACTOR, "site.create", f"site:{DEMO_SITE}", now))
    collectors = []
    for index, letter in enumerate("AB"):
        building_id, collector_id = f"bldg_{letter.lower()}", f"coll_{letter.lower()}"
        tenancy.add_building(Building(op, DEMO_SITE, building_id, f"Building {letter}", FLOORS),
                             operation(op, PLATFORM_ACTOR, "building.create", f"building:{building_id}", now))
        host, port = endpoints.get(collector_id, ("127.0.0.1", 5020 + index))
        collectors.append(Collector(op, DEMO_SITE, collector_id, f"Collector {letter}", Transport.RTU_OVER_TCP,
                                    host, port, building_id))
    tenancy.add_units(demo_units())
    tenancy.add_collectors(collectors)
    tenancy.add_meters(demo_meters())
