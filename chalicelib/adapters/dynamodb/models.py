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
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.models import Model

from chalicelib.adapters.dynamodb.attributes import DecimalAttribute, IntegerAttribute, JSONDictAttribute


class TableMeta:
    """What every table shares; the table name, endpoint and credentials are bound at start-up."""

    table_name = ""
    region = "us-east-1"
    billing_mode = "PAY_PER_REQUEST"
    host: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None


class MainItem(Model):
    """Base of every item in the main table."""

    class Meta(TableMeta):
        table_name = "voltvend-main"

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
    reading_interval_s = IntegerAttribute(default=1800)
    alarm_amount_1_minor = IntegerAttribute(default=5000)
    alarm_amount_2_minor = IntegerAttribute(default=2000)
    alarm_sms_number = UnicodeAttribute(default="")
    hoarding_limit_minor = IntegerAttribute(default=500_000)
    overload_threshold_kw = DecimalAttribute(null=True)  # added later: items stored before load it as None


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
    # The meter's own values of the site defaults; absent (None) inherits. Added later, so all are optional.
    overload_threshold_kw = DecimalAttribute(null=True)
    alarm_amount_1_minor = IntegerAttribute(null=True)
    alarm_amount_2_minor = IntegerAttribute(null=True)
    hoarding_limit_minor = IntegerAttribute(null=True)


class BridgeItem(MainItem, discriminator="bridge"):
    bridge_id = UnicodeAttribute()
    site_id = UnicodeAttribute()
    collectors = ListAttribute(of=UnicodeAttribute, default=list)
    credential_digest = UnicodeAttribute()
    status = UnicodeAttribute()
    last_seen = UTCDateTimeAttribute(null=True)
    connection_id = UnicodeAttribute(null=True)


class ConnectionItem(MainItem, discriminator="connection"):
    """WebSocket connection → bridge. Keyed by connection id: it is all a message event carries."""

    operator_id = UnicodeAttribute()
    bridge_id = UnicodeAttribute()
    site_id = UnicodeAttribute()
    connected_at = UTCDateTimeAttribute()


class TunnelItem(MainItem, discriminator="tunnel"):
    """A collector's key ring and sequence state per direction; the version serialises writers."""

    collector_id = UnicodeAttribute()
    keyring = JSONDictAttribute()
    inbound = JSONDictAttribute()
    outbound = JSONDictAttribute()
    version = VersionAttribute()


class SendLockItem(MainItem, discriminator="send_lock"):
    """Held while one invocation seals and posts on a collector's channel: the bridge rejects reordered
    sequence numbers, so sealing and sending must not interleave between concurrent invocations."""

    holder = UnicodeAttribute()
    until_ms = IntegerAttribute()


class MeterStateItem(MainItem, discriminator="meter_state"):
    meter_id = UnicodeAttribute()
    read_at = UTCDateTimeAttribute()
    values = JSONDictAttribute()
    problems = ListAttribute(of=UnicodeAttribute, default=list)
    last_answer_at = UTCDateTimeAttribute(null=True)
    missed_cycles = IntegerAttribute(default=0)
    alarms = JSONDictAttribute(null=True)
    billing = JSONDictAttribute(null=True)  # cloud-billed meters: the month's energy and charge accumulator
    # What the status board shows of this state, as one compact JSON text (board_summary in readings_repo): the
    # board reads 1,000 of these per request, and one small attribute parses far faster than the full state.
    board = UnicodeAttribute(null=True)


class AlarmStateItem(MainItem, discriminator="alarm_state"):
    state = JSONDictAttribute()


class AlarmItem(MainItem, discriminator="alarm"):
    record = JSONDictAttribute()
    active = BooleanAttribute(default=True)


class OutboxItem(MainItem, discriminator="outbox"):
    site_id = UnicodeAttribute()
    recipient = UnicodeAttribute()
    language = UnicodeAttribute()
    text = UnicodeAttribute()
    not_before = UTCDateTimeAttribute()
    alarm_id = UnicodeAttribute()
    urgent = BooleanAttribute(default=False)
    status = UnicodeAttribute()
    detail = UnicodeAttribute(null=True)
    sent_at = UTCDateTimeAttribute(null=True)


class DayItem(MainItem, discriminator="day"):
    """One day's roll-up of one scope: ``meter:<id>``, ``unit:<id>``, ``floor:<building>/<floor>`` or
    ``building:<id>``."""

    day = UnicodeAttribute()
    scope = UnicodeAttribute()
    figures = JSONDictAttribute()


class UsageItem(MainItem, discriminator="usage"):
    """A cloud-billed meter's priced consumption over one reading interval (written once per interval)."""

    meter_id = UnicodeAttribute()
    start_ms = IntegerAttribute()
    end_ms = IntegerAttribute()
    energy_centi_kwh = IntegerAttribute()
    cost_micro = IntegerAttribute()
    charge_minor = IntegerAttribute()
    month = UnicodeAttribute()


class TariffItem(MainItem, discriminator="tariff"):
    """One tariff version of a site (scope ``site``) or a meter (scope ``meter:<id>``); never edited."""

    scope = UnicodeAttribute()
    body = JSONDictAttribute()


class CommandItem(MainItem, discriminator="command"):
    """A command sent to one meter through the bridge, and what its read-back said."""

    command_kind = UnicodeAttribute()
    meter_id = UnicodeAttribute()
    bus = UnicodeAttribute()
    status = UnicodeAttribute()
    detail = UnicodeAttribute(default="")
    expected = JSONDictAttribute(null=True)  # register values the read-back must show
    batch_id = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()


class LedgerEntryItem(MainItem, discriminator="ledger_entry"):
    """An immutable ledger entry, stored three times: by id (the idempotency guard), in its month's journal and
    in its meter's (or account's) history. Never updated, so the copies cannot drift."""

    entry = JSONDictAttribute()
    account_id = UnicodeAttribute()
    meter_id = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()


class MeterMoneyItem(MainItem, discriminator="meter_money"):
    """One meter's ledger credit and the queue of credit on its way to it; every write is conditional on version."""

    site_id = UnicodeAttribute()
    meter_id = UnicodeAttribute()
    account_id = UnicodeAttribute(null=True)
    billing_mode = UnicodeAttribute()
    credit_minor = IntegerAttribute()
    confirmed_count = IntegerAttribute()
    blocked = UnicodeAttribute(null=True)
    deliveries = JSONDictAttribute()  # a list, oldest first
    has_work = BooleanAttribute(default=False)
    updated_at = UTCDateTimeAttribute(null=True)
    baseline = JSONDictAttribute(null=True)  # registers when the meter was taken over
    version = VersionAttribute()


class FoldCheckpointItem(MainItem, discriminator="fold_checkpoint"):
    """Where the hourly reconciliation's fold of a meter's credit stopped (``domain.ledger.FoldCheckpoint``)."""

    through_at = UTCDateTimeAttribute()
    through_entry_id = UnicodeAttribute()
    balance_minor = IntegerAttribute()


class DeliveryRecordItem(MainItem, discriminator="delivery_record"):
    """How a delivery ended (delivered, or failed), kept after it leaves the meter's queue."""

    meter_id = UnicodeAttribute()
    delivery = JSONDictAttribute()
    settled_at = UTCDateTimeAttribute()


class CustomerAccountItem(MainItem, discriminator="customer_account"):
    account = JSONDictAttribute()
    is_open = BooleanAttribute()
    closing = JSONDictAttribute(null=True)
    version = VersionAttribute()


class TenantItem(MainItem, discriminator="tenant"):
    tenant_id = UnicodeAttribute()
    login = UnicodeAttribute()
    display_name = UnicodeAttribute()
    password_hash = UnicodeAttribute()
    account_ids = ListAttribute(of=UnicodeAttribute, default=list)
    language = UnicodeAttribute(default="zh_Hans")
    sms_alerts = BooleanAttribute(default=True)
    failed_logins = IntegerAttribute(default=0)
    locked_until = UTCDateTimeAttribute(null=True)
    created_at = UTCDateTimeAttribute(null=True)
    version = VersionAttribute()


class TenantLoginItem(MainItem, discriminator="tenant_login"):
    """Claims a phone number or e-mail address for one tenant of the operator (written only if free)."""

    tenant_id = UnicodeAttribute()


class InvitationItem(MainItem, discriminator="invitation"):
    account_id = UnicodeAttribute()
    created_by = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    expires_at = UTCDateTimeAttribute()
    used_by = UnicodeAttribute(null=True)


class ResetItem(MainItem, discriminator="tenant_reset"):
    """A password reset: keyed by the hash of its secret, so the table never holds a usable token."""

    tenant_id = UnicodeAttribute()
    expires_at = UTCDateTimeAttribute()
    expires = TTLAttribute(null=True)


class PaymentItem(MainItem, discriminator="payment"):
    """One card payment (one payment intent) and how it stands (adapters/dynamodb/payment_repo.py)."""

    intent_id = UnicodeAttribute()
    site_id = UnicodeAttribute()
    meter_id = UnicodeAttribute()
    status = UnicodeAttribute()
    amount_minor = IntegerAttribute()
    created_at = UTCDateTimeAttribute()
    record = JSONDictAttribute()  # the whole record (domain.payments.PaymentRecord)
    version = VersionAttribute()


class PaymentLockItem(MainItem, discriminator="payment_lock"):
    """Held while one invocation settles a payment intent: posting or refunding it must not interleave."""

    holder = UnicodeAttribute()
    until_ms = IntegerAttribute()


class ProcessorEventItem(MainItem, discriminator="processor_event"):
    """A payment processor's event seen by the webhook: its id is the de-duplication key."""

    event_type = UnicodeAttribute()
    status = UnicodeAttribute()  # in-progress, done
    lease_until_ms = IntegerAttribute()
    received_at = UTCDateTimeAttribute()
    outcome = UnicodeAttribute(null=True)
    finished_at = UTCDateTimeAttribute(null=True)


class PaymentSettingsItem(MainItem, discriminator="payment_settings"):
    connected_account = UnicodeAttribute()
    updated_at = UTCDateTimeAttribute()
    updated_by = UnicodeAttribute()


class LocalPayItem(MainItem, discriminator="local_pay"):
    """The local stand-in processor's checkout sessions and payment intents (no Stripe keys: demo and tests)."""

    body = JSONDictAttribute()
    version = VersionAttribute()


ALL_ITEM_CLASSES: tuple[type[MainItem], ...] = (
    OperatorItem, RegistryItem, StaffItem, SessionItem, OperationItem,
    SiteItem, BuildingItem, UnitItem, CollectorItem, MeterItem,
    BridgeItem, ConnectionItem, TunnelItem, SendLockItem, MeterStateItem,
    AlarmStateItem, AlarmItem, OutboxItem, DayItem, TariffItem, CommandItem, UsageItem,
    LedgerEntryItem, MeterMoneyItem, DeliveryRecordItem, CustomerAccountItem,
    TenantItem, TenantLoginItem, InvitationItem, ResetItem,
    PaymentItem, PaymentLockItem, ProcessorEventItem, PaymentSettingsItem, LocalPayItem,
)


class ReadingItem(Model):
    """One meter's decoded registers at one time: its own table, keyed per meter, time-ordered."""

    class Meta(TableMeta):
        table_name = "voltvend-readings"

    pk = UnicodeAttribute(hash_key=True)
    at_ms = IntegerAttribute(range_key=True)
    values = JSONDictAttribute()
    expires = TTLAttribute(null=True)
