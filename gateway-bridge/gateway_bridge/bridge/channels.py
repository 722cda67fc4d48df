"""The bridge's end of every collector's tunnel channel: key rings, sequence state, sealing and opening.

Sequence state lives in memory while running and is persisted (``snapshot``) by the caller after
every seal or open, before the sealed text leaves the host. Key rings live in their own 0600 files,
rewritten atomically after a rekey.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from ..protocol import (
    Ack,
    Channel,
    ChannelState,
    KeyRing,
    Message,
    Policy,
    ProtocolError,
    Reason,
    Rekey,
    Role,
    Sealed,
    accept_rekey,
)
from .config import CollectorConfig

UP, DOWN = "up", "down"  # bridge -> cloud (sealed here), cloud -> bridge (opened here)


class Channels:
    """One protocol ``Channel`` per collector, with both directions' state."""

    def __init__(
        self,
        collectors: Iterable[CollectorConfig],
        states: dict[tuple[str, str], ChannelState],
        policy: Policy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._channels: dict[str, Channel] = {}
        self._keyring_paths: dict[str, Path] = {}
        self._states: dict[tuple[str, str], ChannelState] = {}
        for collector in collectors:
            self._channels[collector.id] = Channel(collector.id, collector.load_keyring(), Role.BRIDGE, policy, clock)
            self._keyring_paths[collector.id] = collector.keyring_path
            for direction in (UP, DOWN):
                self._states[(collector.id, direction)] = states.get((collector.id, direction)) or ChannelState()

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self._channels)

    def seal(self, channel_id: str, message: Message) -> Sealed:
        """Seal under the channel's current key with its next sequence number."""
        channel = self._channels[channel_id]
        return Sealed(channel_id, channel.seal(message, self._states[(channel_id, UP)]))

    def open(self, sealed: Sealed) -> Message:
        """Authenticate and parse one inbound envelope; ProtocolError (already logged) if it fails."""
        channel = self._channels.get(sealed.channel)
        if channel is None:
            raise ProtocolError(Reason.UNKNOWN_KEY, "no such collector on this bridge").logged(
                channel=sealed.channel, op="open")
        return channel.open(sealed.envelope, self._states[(sealed.channel, DOWN)]).message()

    def snapshot(self, channel_ids: Iterable[str], direction: str) -> list[tuple[str, str, ChannelState]]:
        """Copies of the states to persist (the store's thread must not see them change)."""
        return [(c, direction, ChannelState.from_dict(self._states[(c, direction)].to_dict())) for c in channel_ids]

    def accept_rekey(self, channel_id: str, rekey: Rekey) -> Ack:
        """Install the cloud's new key, persist the ring, and return the ack to seal under the new key."""
        channel = self._channels[channel_id]
        ack = accept_rekey(channel, rekey)
        if ack.ok:
            write_keyring(self._keyring_paths[channel_id], channel.keyring)
        return ack

    def current_key_id(self, channel_id: str) -> int:
        return self._channels[channel_id].keyring.current.key_id


def write_keyring(path: Path, keyring: KeyRing) -> None:
    """Replace the key ring file atomically, readable by the owner only, and durable before returning."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to a leftover temp file
        os.write(fd, json.dumps(keyring.to_dict(), indent=1).encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
