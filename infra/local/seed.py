"""The demo's data: one property operator, one site of two buildings, 64 units, 2 collectors, 64 meters, and
customer accounts for 40 of the shops (opened once their meters have been read: an account starts from the meter's
purchase count and balance).

Idempotent: an existing demo operator is left as it is (its data may have changed since); accounts are opened with
a request id fixed per meter, so opening them again changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from chalicelib.adapters.clock import SystemClock
from chalicelib.adapters.passwords import Argon2PasswordHasher
from chalicelib.bootstrap import get_services
from chalicelib.domain.access import Grant, Role
from chalicelib.domain.actor import Actor
from chalicelib.domain.errors import DomainError
from chalicelib.domain.staff import StaffUser
from chalicelib.domain.tenancy import BillingMode, Building, Collector, Meter, Site, Transport, Unit
from chalicelib.services.audit import operation
from chalicelib.services.provisioning import PLATFORM_ACTOR, OperatorOnboarding

DEMO_COMPANY = "riverside"
DEMO_SITE = "site_riverside_park"
FLOORS = ("1", "2", "3", "4")
UNITS_PER_FLOOR = 8
DEMO_READING_INTERVAL_S = 60  # fresh within a minute in the demo; sites default to 30 minutes
ACCOUNT_SLOTS = (1, 2, 3, 4, 5)  # shops 1–5 of every floor have customers; 6–8 are left for opening at the desk
LOG = logging.getLogger("voltvend.demo")


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


@dataclass(frozen=True)
class DemoAccount:
    meter_id: str
    customer: str
    unit: str  # the shop number, as on the door
    phone: str


SHOP_NAMES = (
    "Golden Wok Noodles", "Riverside Pharmacy", "Lotus Tea House", "Bright Smile Dental", "Page & Quill Books",
    "Jade Garden Florist", "Swift Key Cutting", "Harbour Bakery", "Pixel Phone Repair", "Blue Heron Café",
    "Silk Road Tailors", "Morning Dew Laundry", "Little Panda Toys", "Red Lantern Hotpot", "North Star Opticians",
    "Fresh Basket Grocer", "Bamboo Yoga Studio", "Copper Kettle Coffee", "Evergreen Hardware", "Moonlight Karaoke",
    "Orchid Nail Salon", "Dragon Gate Dumplings", "Sunrise Stationery", "Cloud Nine Desserts", "Iron Ox Fitness",
    "Peach Blossom Bridal", "Lucky Cat Gifts", "Ginger & Garlic Kitchen", "Willow Pet Grooming", "Azure Print Shop",
    "Maple Leaf Bakery", "Pearl River Seafood", "Tiny Steps Shoes", "Summit Travel Agency", "Golden Needle Repairs",
    "Starlight Cinema Café", "Green Leaf Pharmacy", "Harmony Music School", "Old Town Barber", "Crimson Wine Cellar",
)


def demo_accounts() -> list[DemoAccount]:
    """The shops that have a customer account in the demo, in shop-number order (one meter each)."""
    shops = [number for _, _, number, _ in _layout() if int(number[-2:]) in ACCOUNT_SLOTS]
    return [DemoAccount(f"m_{number.lower()}", name, number, f"+86139{index:08d}")
            for index, (number, name) in enumerate(zip(shops, SHOP_NAMES, strict=True), start=1)]


DEMO_TENANT_LOGIN = "+8613800138104"  # the shop tenant of the tripped shop, on a phone
DEMO_TENANT_PASSWORD = "shop-power-2468"


def ensure_demo_tenant(account_id: str) -> None:
    """The demo's shop tenant, signed up through an invitation like any tenant; on a restart the same log-in just
    gets the account added again (accepting an invitation with its password), so this is safe to repeat."""
    services = get_services()
    invitation = services.tenant_auth.invite(demo_admin(), DEMO_SITE, account_id)
    try:
        services.tenant_auth.accept(DEMO_COMPANY, invitation.invitation_id, login=DEMO_TENANT_LOGIN,
                                    display_name="Dr. Lin (Bright Smile Dental)", password=DEMO_TENANT_PASSWORD)
    except DomainError as error:  # e.g. someone changed the demo tenant's password: the demo runs on without
        logging.getLogger("voltvend.demo").warning("demo tenant not prepared: %s", error)


def demo_admin() -> Actor:
    """The demo administrator, logged in (the seed's own actions are theirs in the operation log)."""
    services, admin = get_services(), DEMO_LOGINS[0]
    session = services.auth.login(DEMO_COMPANY, admin.username, admin.password)
    actor = services.auth.resolve(DEMO_COMPANY, session.session_id)
    assert actor is not None
    return actor


def open_demo_accounts(actor: Actor, accounts: Iterable[DemoAccount]) -> list[DemoAccount]:
    """Open each shop's account whose meter has been read and is on no account yet; returns the shops still waiting
    for their meter's first reading. A shop whose meter a person put on another account is left alone."""
    services = get_services()
    taken = {m.meter_id for stored in services.sales.accounts(actor, DEMO_SITE) if stored.account.is_open
             for m in stored.account.meters if m.is_open}
    todo = [a for a in accounts if a.meter_id not in taken]
    states = services.readings.get_states(DEMO_COMPANY, DEMO_SITE, [a.meter_id for a in todo]) if todo else []
    read = {s.meter_id for s in states if s.values.get("purchase_count") is not None}
    for account in todo:
        if account.meter_id not in read:
            continue
        try:
            services.sales.open_account(actor, DEMO_SITE, account.customer, [account.meter_id], phone=account.phone,
                                        unit=account.unit, request_id=f"demo-account-{account.meter_id}")
        except DomainError as error:
            LOG.warning("demo account for %s not opened: %s", account.unit, error)
    return [a for a in todo if a.meter_id not in read]


def account_of(actor: Actor, meter_id: str) -> str | None:
    """The id of the open account the meter is on, if any."""
    for stored in get_services().sales.accounts(actor, DEMO_SITE):
        if stored.account.is_open and any(m.meter_id == meter_id and m.is_open for m in stored.account.meters):
            return stored.account.account_id
    return None


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
