"""The bridge<->cloud tunnel wire protocol: one implementation, used by both ends.

Pure Python + pycryptodome. Never imports chalicelib, boto3 or chalice: the cloud build vendors this
package as it is.

Layers (outside in)
-------------------
1. ``frames``: ASCII JSON *text* WebSocket messages (API Gateway refuses binary frames).
   ``{"t":"env","items":[{"ch":..,"e":..}]}`` carries envelopes; anything longer than the message
   limit (default 128 KB) travels as ``{"t":"part","mid":..,"i":..,"n":..,"d":..}`` parts that
   :class:`FrameReader` reassembles within limits.
2. ``envelope`` + ``channel``: each envelope is base64 of a binary envelope sealed under a
   *collector's* key: 3DES-CBC (random IV) + HMAC-SHA256 encrypt-then-MAC, or AES-256-GCM, chosen
   per collector by its key's suite. The authenticated header carries key id, direction, sequence
   number and timestamp; the channel (collector) id is bound into the MAC. :class:`Channel` enforces
   direction, strictly increasing sequence numbers and the timestamp window.
3. ``messages``: the typed message inside (hello, heartbeat, batch, command, batch_result, upload,
   ack, rekey), validated strictly.

Every rejection raises :class:`ProtocolError` carrying a :class:`Reason`, logged once at WARNING
on logger ``gateway_bridge.protocol`` (reason and ids only, never key material).

State the caller persists
-------------------------
* :class:`KeyRing` per collector (secret: ``to_dict()`` contains key bytes).
* :class:`ChannelState` per collector *per direction* (``to_dict()``: seq, 64-bit seen bitmap, usage
  per key id). Load before ``seal``/``open``, store after: on the bridge in SQLite, in the cloud in
  DynamoDB with a conditional write on the old ``seq`` so two Lambdas cannot both use one number.
  Sealing advances the send state even if sending then fails: a gap is fine, reuse is not.

Key rotation (rekey) flow
-------------------------
Usage is counted per key: 64-bit blocks for 3DES, messages for GCM. ``Channel.needs_rotation(tx,
rx)`` turns true when either direction reaches 2^18 blocks (so < 2^19 in total, far below NIST's
2^20 for 3DES); sealing is refused (``KEY_EXHAUSTED``) at 2^19 per direction. The cloud drives:

1. Cloud: ``rekey = start_rekey(channel, suite=None)`` generates the next key pair (id = current + 1;
   3DES keys drawn until ``adjust_key_parity`` accepts them), stages it as ``pending`` and returns a
   ``Rekey`` message, which the cloud seals under the **current** key and sends. The cloud keeps
   sealing under the current key; a pending key can already open.
2. Bridge: opens it (authentic under the current key), ``ack = accept_rekey(channel, rekey)``
   installs the key as pending and promotes it at once: new key = current, old key = previous,
   which still opens for ``Policy.overlap_s`` (in-flight messages only; never used to seal).
   The bridge seals the ``Ack`` under the **new** key and sends it.
3. Cloud: ``Channel.open`` sees the pending key id on an authentic envelope (proof the bridge holds
   it) and promotes it the same way (``Opened.promoted`` is True: persist the ring). From now on
   both sides seal under the new key id; the old one opens until its overlap ends, then
   ``KEY_RETIRED``.

Lost ack: the bridge's next message (heartbeat, results) is under the new key and promotes the cloud
just the same; a resent rekey for the key in use is acked again. Passing ``suite=Suite.AES_GCM`` to
``start_rekey`` switches a collector to AES-GCM through the same flow (crypto agility).
Sequence numbers do not restart on a rekey.
"""

from __future__ import annotations

from .channel import Channel, ChannelState, Opened, Policy, Role, open_, seal
from .envelope import Direction
from .errors import ProtocolError, Reason
from .frames import (
    MAX_FRAME_BYTES,
    MAX_MESSAGE_BYTES,
    FrameReader,
    Limits,
    Reassembler,
    Sealed,
    encode_frame,
    fragments,
    split,
)
from .keys import CollectorKey, KeyRing, Suite, generate_key
from .messages import (
    Ack,
    Batch,
    BatchResult,
    Command,
    Heartbeat,
    Hello,
    Message,
    Rekey,
    Txn,
    TxnError,
    TxnResult,
    Upload,
    encode_message,
    parse_message,
)
from .rekey import accept_rekey, start_rekey

__all__ = [
    "MAX_FRAME_BYTES",
    "MAX_MESSAGE_BYTES",
    "Ack",
    "Batch",
    "BatchResult",
    "Channel",
    "ChannelState",
    "CollectorKey",
    "Command",
    "Direction",
    "FrameReader",
    "Heartbeat",
    "Hello",
    "KeyRing",
    "Limits",
    "Message",
    "Opened",
    "Policy",
    "ProtocolError",
    "Reason",
    "Reassembler",
    "Rekey",
    "Role",
    "Sealed",
    "Suite",
    "Txn",
    "TxnError",
    "TxnResult",
    "Upload",
    "accept_rekey",
    "encode_frame",
    "encode_message",
    "fragments",
    "generate_key",
    "open_",
    "parse_message",
    "seal",
    "split",
    "start_rekey",
]
