"""PynamoDB models of the main table: one table, one item class per entity (discriminator ``kind``).

Access patterns (also in docs/data-model.md):
- operator profile, staff, sessions, sites:   pk ``OP#<op>``, sk ``OPERATOR`` / ``STAFF#`` / ``SESSION#`` / ``SITE#``
- a site's buildings, units, collectors, meters:
  pk ``OP#<op>#SITE#<site>``, sk ``BLDG#`` / ``UNIT#`` / ``COLL#`` / ``METER#``
- operation log by month, newest first:       pk ``OP#<op>#LOG#<yyyy-mm>``, sk ``<iso time>#<id>``
- platform registry for schedulers:           pk ``PLATFORM``, sk ``OP#<op>`` / ``SITE#<op>#<site>``
"""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    DiscriminatorAttribute,
    ListAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.models import Model

from chalicelib.adapters.dynamodb.attributes import IntegerAttribute, JSONDictAttribute


class MainItem(Model):
    """Base of every item in the main table; the table name and host are bound at start-up."""

    class Meta:
        table_name = "voltvend-main"
        region = "us-east-1"
        billing_mode = "PAY_PER_REQUEST"
        host: str | None = None
        aws_access_key_id: str | None = None
        aws_secret_access_key: str | None = None

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = DiscriminatorAttribute()


class OperatorItem(MainItem, discriminator="operator"):
    name = UnicodeAttribute()
    currency = UnicodeAttribute()
    timezone = UnicodeAttribute()


class RegistryItem(MainItem, discriminator="registry"):
    operator_id = UnicodeAttribute()
    site_id = UnicodeAttribute(null=True)


class StaffItem(MainItem, discriminator="staff"):
    username = UnicodeAttribute()
    display_name = UnicodeAttribute()
    password_hash = UnicodeAttribute()
    role = UnicodeAttribute()
    extra_permissions = ListAttribute(of=UnicodeAttribute, default=list)
    sites = ListAttribute(of=UnicodeAttribute, default=list)
    status = UnicodeAttribute()
    must_change_password = BooleanAttribute(default=False)
    failed_logins = IntegerAttribute(default=0)
    locked_until = UTCDateTimeAttribute(null=True)
    created_at = UTCDateTimeAttribute(null=True)
    version = VersionAttribute()


class SessionItem(MainItem, discriminator="session"):
    username = UnicodeAttribute()
    csrf_token = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    expires_at = UTCDateTimeAttribute()


class OperationItem(MainItem, discriminator="oplog"):
    entry_id = UnicodeAttribute()
    at = UTCDateTimeAttribute()
    actor = UnicodeAttribute()
    action = UnicodeAttribute()
    target = UnicodeAttribute()
    before = JSONDictAttribute(null=True)
    after = JSONDictAttribute(null=True)
    source_ip = UnicodeAttribute(default="")
    details = JSONDictAttribute(null=True)


class SiteItem(MainItem, discriminator="site"):
    site_id = UnicodeAttribute()
    name = UnicodeAttribute()
    address = UnicodeAttribute(default="")


class BuildingItem(MainItem, discriminator="building"):
    building_id = UnicodeAttribute()
    name = UnicodeAttribute()
    floors = ListAttribute(of=UnicodeAttribute, default=list)


class UnitItem(MainItem, discriminator="unit"):
    unit_id = UnicodeAttribute()
    building_id = UnicodeAttribute()
    floor = UnicodeAttribute()
    number = UnicodeAttribute()


class CollectorItem(MainItem, discriminator="collector"):
    collector_id = UnicodeAttribute()
    name = UnicodeAttribute()
    transport = UnicodeAttribute()
    host = UnicodeAttribute()
    port = IntegerAttribute()
    building_id = UnicodeAttribute(default="")


class MeterItem(MainItem, discriminator="meter"):
    meter_id = UnicodeAttribute()
    serial = UnicodeAttribute()
    model = UnicodeAttribute()
    collector_id = UnicodeAttribute()
    address = IntegerAttribute()
    unit_id = UnicodeAttribute()
    billing_mode = UnicodeAttribute()
    ct_ratio = IntegerAttribute(default=1)


ALL_ITEM_CLASSES: tuple[type[MainItem], ...] = (
    OperatorItem, RegistryItem, StaffItem, SessionItem, OperationItem,
    SiteItem, BuildingItem, UnitItem, CollectorItem, MeterItem,
)
