"""The rekey flow's two halves: the cloud starts it, the bridge accepts it (see the package docstring).

Both halves only change the key ring; sealing, sending and persisting stay with the caller.
"""

from __future__ import annotations

from .channel import Channel
from .errors import ProtocolError
from .keys import MAX_KEY_ID, Suite, generate_key
from .messages import Ack, Rekey


def _next_id(channel: Channel) -> int:
    ring = channel.keyring
    taken = ring.key_ids() | ({ring.retired_id} if ring.retired_id else set())
    key_id = ring.current.key_id
    while key_id in taken:
        key_id = key_id % MAX_KEY_ID + 1  # ids run 1..2^32-1 and wrap; never reuse one in the ring
    return key_id


def start_rekey(channel: Channel, suite: Suite | None = None) -> Rekey:
    """Cloud side: stage a fresh key as pending and return the ``rekey`` message that carries it.

    Seal the result on ``channel`` (it goes out under the *current* key). If a rekey is already
    pending (its ack never came), the same pending key is offered again, so a resend is harmless.
    ``suite`` switches the collector's cipher suite (e.g. to AES-GCM) with the new key.
    """
    ring = channel.keyring
    pending = ring.pending
    if pending is None:
        pending = generate_key(_next_id(channel), suite or ring.current.suite, channel.now_ms())
        ring.stage(pending)
    return Rekey(ref=f"rekey-{pending.key_id}", key=pending)


def accept_rekey(channel: Channel, msg: Rekey) -> Ack:
    """Bridge side: install the key from an opened ``rekey`` message and switch to it.

    Returns the ack to seal on ``channel`` at once: it goes out under the new key, which proves to the
    cloud that the bridge holds it (the cloud switches when it opens it). The old key keeps opening
    in-flight messages for ``policy.overlap_s``. A resent rekey for the key already in use is acked
    again; a conflicting one gets a negative ack (and is logged).
    """
    ring = channel.keyring
    if ring.current.key_id == msg.key.key_id:
        same = ring.current == msg.key
        return Ack(msg.ref, ok=same, error=None if same else "key id already in use with other key")
    try:
        ring.stage(msg.key)
    except ProtocolError as err:
        err.logged(channel=channel.channel_id, op="rekey")
        return Ack(msg.ref, ok=False, error=err.reason.value)
    ring.promote(channel.now_ms(), int(channel.policy.overlap_s * 1000))
    return Ack(msg.ref)
