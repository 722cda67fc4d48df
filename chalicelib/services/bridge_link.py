"""The cloud end of the bridge tunnel: authenticate bridges, open and seal envelopes, route messages.

Each WebSocket message is handled by a stateless function (Lambda), so everything a message needs
is loaded from DynamoDB: the connection's bridge, and the collector's key ring and sequence state,
written back conditionally so two concurrent invocations can never reuse a sequence number.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta

from gateway_bridge.protocol import (
    Ack,
    Batch,
    BatchResult,
    Channel,
    ChannelState,
    Heartbeat,
    Hello,
    KeyRing,
    Message,
    ProtocolError,
    Role,
    Sealed,
    Upload,
    encode_frame,
    start_rekey,
)
from gateway_bridge.protocol.frames import Limits, decode

from chalicelib.domain.bridges import Bridge, BridgeConnection, BridgeStatus, TunnelState, operator_of
from chalicelib.domain.readings import Usage
from chalicelib.domain.tariffs import RatePrices
from chalicelib.domain.tenancy import Meter
from chalicelib.ports import BridgeRepository, Clock, ConnectionGone, StaleTunnelState, TenancyRepository
from chalicelib.services.ingest import ReadingIngest
from chalicelib.services.reading_plan import standing_plans

LOG = logging.getLogger("voltvend.bridge.link")
INBOUND_LIMITS = Limits()
TUNNEL_RETRIES = 5
COMMAND_PREFIX = "cmd-"
METERS_CACHE_S = 30.0
SEEN_GRANULARITY = timedelta(seconds=30)  # presence needs minutes, not a write per message
READ_NOW_CHUNK_TXNS = 16  # eight two-block meters
SEND_LOCK_HOLD_MS = 5_000  # a crashed holder delays the channel at most this long
SEND_LOCK_WAIT_S = 10.0
GAP_WAIT_S = 1.0  # how long a message waits for an earlier one of its channel; past that the earlier one is lost
GAP_POLL_S = 0.02
Sender = Callable[[str, str], None]


class TunnelBusy(Exception):
    """The collector's tunnel state kept changing under us; the message is left for the peer to resend."""


class BridgeLink:
    def __init__(self, bridges: BridgeRepository, tenancy: TenancyRepository, ingest: ReadingIngest,
                 send: Sender, clock: Clock) -> None:
        self._bridges = bridges
        self._tenancy = tenancy
        self._ingest = ingest
        self._send = send
        self._clock = clock
        # Set by the composition root: commands live in a service that itself sends through this link.
        self.command_results: Callable[[Bridge, BatchResult], None] | None = None
        self.price_pusher: Callable[[Bridge, Meter, RatePrices], object] | None = None
        self.bridge_ready: Callable[[Bridge], None] | None = None  # a bus said hello: send what waited for it
        self.charge_poster: Callable[[str, Sequence[Usage]], object] | None = None  # priced usage → ledger
        self._meters: dict[tuple[str, str], tuple[float, list[Meter]]] = {}

    # -- connection lifecycle ----------------------------------------------------------------
    def connect(self, connection_id: str, bridge_id: str, credential: str) -> bool:
        operator_id = operator_of(bridge_id or "")
        bridge = self._bridges.get(operator_id, bridge_id) if operator_id else None
        if bridge is None or not bridge.accepts(credential):
            LOG.warning("refused bridge connection for %r", bridge_id)
            return False
        now = self._clock.now()
        self._bridges.put_connection(BridgeConnection(connection_id, bridge.operator_id, bridge_id, bridge.site_id),
                                     now)
        self._bridges.mark_seen(bridge.operator_id, bridge_id, now, connection_id)
        return True

    def disconnect(self, connection_id: str) -> None:
        link = self._bridges.get_connection(connection_id)
        if link is None:
            return
        self._bridges.delete_connection(connection_id)
        self._bridges.mark_disconnected(link.operator_id, link.bridge_id, connection_id)

    # -- inbound -----------------------------------------------------------------------------
    def receive(self, connection_id: str, text: str) -> None:
        link = self._bridges.get_connection(connection_id)
        if link is None:
            LOG.warning("message on unknown connection %s dropped", connection_id)
            return
        bridge = self._bridges.get(link.operator_id, link.bridge_id)
        if bridge is None or not bridge.accepts_connection(connection_id):
            LOG.warning("message from a revoked or replaced connection of %s dropped", link.bridge_id)
            return
        try:
            frame = decode(text, INBOUND_LIMITS, INBOUND_LIMITS.max_message_bytes, allow_part=False)
        except ProtocolError:
            return  # logged with its reason by the protocol
        now = self._clock.now()
        if bridge.last_seen is None or now - bridge.last_seen >= SEEN_GRANULARITY:
            self._bridges.mark_seen(bridge.operator_id, bridge.bridge_id, now, connection_id)
        for sealed in frame if isinstance(frame, tuple) else ():
            self._receive_envelope(bridge, sealed)

    def _receive_envelope(self, bridge: Bridge, sealed: Sealed) -> None:
        if sealed.channel not in bridge.collectors:
            LOG.warning("bridge %s sent on a channel it does not own: %s", bridge.bridge_id, sealed.channel)
            return
        try:
            message = self._open(bridge, sealed)
        except ProtocolError:
            return
        self._dispatch(bridge, sealed.channel, message)

    def _open(self, bridge: Bridge, sealed: Sealed) -> Message:
        gap_deadline = time.monotonic() + GAP_WAIT_S
        attempts = 0
        while attempts < TUNNEL_RETRIES:
            tunnel = self._tunnel(bridge, sealed.channel)
            keyring, state = KeyRing.from_dict(tunnel.keyring), ChannelState.from_dict(tunnel.inbound)
            last_seq = state.seq
            channel = Channel(sealed.channel, keyring, Role.CLOUD)
            opened = channel.open(sealed.envelope, state)
            if opened.seq > last_seq + 1 and time.monotonic() < gap_deadline:
                # An earlier message of this channel is still being opened by another invocation (API Gateway
                # delivers one connection's messages concurrently). Let it land first: the protocol refuses
                # anything older than what it has accepted, so taking this one now would lose that one.
                time.sleep(GAP_POLL_S)
                continue
            attempts += 1
            due = channel.needs_rotation(state, ChannelState.from_dict(tunnel.outbound)) and keyring.pending is None
            try:
                self._bridges.save_tunnel(bridge.operator_id, bridge.site_id,
                                          replace(tunnel, keyring=keyring.to_dict(), inbound=state.to_dict()))
            except StaleTunnelState:
                continue
            if due:
                self.rekey(bridge, sealed.channel)
            return opened.message()
        raise TunnelBusy(sealed.channel)

    def _dispatch(self, bridge: Bridge, collector_id: str, message: Message) -> None:
        if isinstance(message, Hello):
            self.push_plans(bridge, only_collector=collector_id)
            if self.bridge_ready is not None:
                self.bridge_ready(bridge)
        elif isinstance(message, BatchResult):
            self._take_result(bridge, collector_id, message)
            self.send(bridge, collector_id, [Ack(ref=message.cycle)])
        elif isinstance(message, Upload):
            for result in message.results:
                self._take_result(bridge, collector_id, result)
            self.send(bridge, collector_id, [Ack(ref=message.ref)])
        elif not isinstance(message, Heartbeat | Ack):
            LOG.warning("unexpected %s from bridge %s", type(message).__name__, bridge.bridge_id)

    def _take_result(self, bridge: Bridge, collector_id: str, result: BatchResult) -> None:
        if result.bus != collector_id:
            LOG.warning("result for bus %s arrived on channel %s; dropped", result.bus, collector_id)
            return
        if result.cycle.startswith(COMMAND_PREFIX):
            if self.command_results is not None:
                self.command_results(bridge, result)
            return
        meter_ids = {item.id.partition("@")[0] for item in result.results}
        meters = [m for m in self._site_meters(bridge.operator_id, bridge.site_id) if m.meter_id in meter_ids]
        outcome = self._ingest.ingest(bridge.operator_id, bridge.site_id, collector_id, result, meters,
                                      self._clock.now())
        for push in outcome.price_pushes:
            if self.price_pusher is not None:
                self.price_pusher(bridge, push.meter, push.prices)
        if outcome.usage and self.charge_poster is not None:
            self.charge_poster(bridge.operator_id, outcome.usage)

    # -- outbound ----------------------------------------------------------------------------
    def push_plans(self, bridge: Bridge, *, only_collector: str | None = None, every_s: int | None = None) -> int:
        """Send each bus its standing read plan; returns how many buses got one."""
        site = self._tenancy.get_site(bridge.operator_id, bridge.site_id)
        interval = every_s or (site.reading_interval_s if site else 1800)
        meters = self._tenancy.list_meters(bridge.operator_id, bridge.site_id)
        sent = 0
        for plan in standing_plans(meters, "", interval):
            if plan.bus in bridge.collectors and only_collector in (None, plan.bus):
                plan = replace(plan, cycle=plan_id(plan))
                sent += self.send(bridge, plan.bus, [plan])
        return sent

    def read_now(self, bridge: Bridge, meters: list[Meter]) -> int:
        """A one-off read of these meters ("read now"); returns how many buses it went to.

        Each bus gets its meters in small batches, run one after another there: each batch's result
        comes back (and is stored) while the bus reads the next, so the last meter's state lands
        shortly after the bus falls silent instead of after a whole bus's worth of ingestion."""
        cycle = f"now-{secrets.token_hex(6)}"
        plans = [p for p in standing_plans(meters, cycle, 0) if p.bus in bridge.collectors]
        # Buses are independent channels: ask them all at once rather than one after another.
        with ThreadPoolExecutor(max_workers=max(1, min(len(plans), 8))) as pool:
            sent = pool.map(lambda plan: self.send(bridge, plan.bus, chunks(plan, READ_NOW_CHUNK_TXNS)), plans)
            return sum(sent)

    def send(self, bridge: Bridge, collector_id: str, messages: Sequence[Message]) -> bool:
        """Seal and push; False (and the bridge marked offline) when it is not connected."""
        if bridge.connection_id is None:
            return False
        with self._send_lock(bridge, collector_id):
            text = encode_frame([Sealed(collector_id, self._seal(bridge, collector_id, m)) for m in messages])
            try:
                self._send(bridge.connection_id, text)
            except ConnectionGone:
                self._bridges.mark_disconnected(bridge.operator_id, bridge.bridge_id, bridge.connection_id)
                return False
        return True

    @contextmanager
    def _send_lock(self, bridge: Bridge, collector_id: str) -> Iterator[None]:
        holder = secrets.token_hex(8)
        deadline = time.monotonic() + SEND_LOCK_WAIT_S
        while not self._bridges.acquire_send_lock(bridge.operator_id, bridge.site_id, collector_id, holder,
                                                  now_ms(self._clock.now()), SEND_LOCK_HOLD_MS):
            if time.monotonic() > deadline:
                raise TunnelBusy(collector_id)
            time.sleep(0.01)
        try:
            yield
        finally:
            self._bridges.release_send_lock(bridge.operator_id, bridge.site_id, collector_id, holder)

    def _seal(self, bridge: Bridge, collector_id: str, message: Message) -> str:
        for _ in range(TUNNEL_RETRIES):
            tunnel = self._tunnel(bridge, collector_id)
            keyring, state = KeyRing.from_dict(tunnel.keyring), ChannelState.from_dict(tunnel.outbound)
            envelope = Channel(collector_id, keyring, Role.CLOUD).seal(message, state)
            try:
                self._bridges.save_tunnel(bridge.operator_id, bridge.site_id,
                                          replace(tunnel, outbound=state.to_dict()))
            except StaleTunnelState:
                continue
            return envelope
        raise TunnelBusy(collector_id)

    def rekey(self, bridge: Bridge, collector_id: str) -> None:
        """Stage the collector's next key and send it under the current one (3DES keys wear out at 2^20
        blocks; the protocol asks for a rekey well before). The bridge's first message under the new key
        switches us over (see gateway_bridge.protocol)."""
        with self._send_lock(bridge, collector_id):
            tunnel = self._tunnel(bridge, collector_id)
            keyring, state = KeyRing.from_dict(tunnel.keyring), ChannelState.from_dict(tunnel.outbound)
            channel = Channel(collector_id, keyring, Role.CLOUD)
            envelope = channel.seal(start_rekey(channel), state)
            self._bridges.save_tunnel(bridge.operator_id, bridge.site_id,
                                      replace(tunnel, keyring=keyring.to_dict(), outbound=state.to_dict()))
            if bridge.connection_id is not None:
                self._send(bridge.connection_id, encode_frame([Sealed(collector_id, envelope)]))
        LOG.info("rekey of collector %s started", collector_id)

    def _tunnel(self, bridge: Bridge, collector_id: str) -> TunnelState:
        tunnel = self._bridges.load_tunnel(bridge.operator_id, bridge.site_id, collector_id)
        if tunnel is None:
            raise LookupError(f"no tunnel keys for collector {collector_id}")
        return tunnel

    def bridge(self, operator_id: str, bridge_id: str) -> Bridge | None:
        return self._bridges.get(operator_id, bridge_id)

    def sweep_presence(self, operator_ids: list[str]) -> int:
        """Forget connections not heard from within the lost-contact time; returns how many went."""
        now, lost = self._clock.now(), 0
        for operator_id in operator_ids:
            for bridge in self._bridges.list(operator_id):
                if bridge.connection_id and not bridge.online(now):
                    self._bridges.mark_disconnected(operator_id, bridge.bridge_id, bridge.connection_id)
                    lost += 1
        return lost

    def collectors_heard(self, operator_id: str) -> dict[str, dict[str, datetime]]:
        """Per site, when each collector's bridge was last heard (a bridge never heard from is not judged)."""
        heard: dict[str, dict[str, datetime]] = {}
        for bridge in self._bridges.list(operator_id):
            if bridge.last_seen is not None and bridge.status is BridgeStatus.ACTIVE:
                heard.setdefault(bridge.site_id, {}).update({c: bridge.last_seen for c in bridge.collectors})
        return heard

    def _site_meters(self, operator_id: str, site_id: str) -> list[Meter]:
        """The site's meter registry, cached briefly: every bus run needs it and it changes rarely. A meter
        moved within the window at worst has one run's answers refused (the address no longer matches)."""
        key, now = (operator_id, site_id), time.monotonic()
        cached = self._meters.get(key)
        if cached is None or now - cached[0] > METERS_CACHE_S:
            cached = (now, self._tenancy.list_meters(operator_id, site_id))
            self._meters[key] = cached
        return cached[1]

    def bridges_of(self, operator_id: str, site_id: str) -> list[Bridge]:
        return [b for b in self._bridges.list(operator_id) if b.site_id == site_id]


def chunks(plan: Batch, size: int) -> list[Batch]:
    """Split a one-off batch into consecutive batches of at most ``size`` transactions, named ``cycle.n``."""
    return [replace(plan, cycle=f"{plan.cycle}.{n}", txns=plan.txns[start:start + size])
            for n, start in enumerate(range(0, len(plan.txns), size))]


def plan_id(plan: Batch) -> str:
    """Stable for the same plan, so a re-sent plan is recognised by the bridge as unchanged."""
    digest = hashlib.sha256(repr((plan.bus, plan.every_s, [(t.id, t.req) for t in plan.txns])).encode())
    return f"plan-{digest.hexdigest()[:12]}"


def now_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)
