"""Shared fixtures: a fake clock and a cloud/bridge channel pair over one collector key."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from gateway_bridge.protocol import Channel, ChannelState, KeyRing, Role, Suite, generate_key

T0 = 1_800_000_000.0  # a fixed "now" in seconds


@dataclass
class FakeClock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class Pair:
    """Both ends of one collector's channel, each with its own ring copy, clock and states."""

    cloud: Channel
    bridge: Channel
    clock: FakeClock
    down_tx: ChannelState = field(default_factory=ChannelState)  # cloud's send state
    down_rx: ChannelState = field(default_factory=ChannelState)  # bridge's receive state
    up_tx: ChannelState = field(default_factory=ChannelState)  # bridge's send state
    up_rx: ChannelState = field(default_factory=ChannelState)  # cloud's receive state


def make_pair(suite: Suite, channel_id: str = "col-1", key_id: int = 1) -> Pair:
    clock = FakeClock()
    key = generate_key(key_id, suite)
    cloud = Channel(channel_id, KeyRing(key), Role.CLOUD, clock=clock)
    bridge = Channel(channel_id, KeyRing(key), Role.BRIDGE, clock=clock)
    return Pair(cloud, bridge, clock)


@pytest.fixture(params=list(Suite), ids=[s.value for s in Suite])
def suite(request: pytest.FixtureRequest) -> Suite:
    return Suite(request.param)


@pytest.fixture
def pair(suite: Suite) -> Pair:
    return make_pair(suite)
