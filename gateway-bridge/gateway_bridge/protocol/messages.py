"""The typed messages sealed inside envelopes, and their strict validation.

Every message is a JSON object with a kind ``"k"``. Modbus traffic is opaque here: requests are raw
RTU ADUs (address, function, data, CRC) in base64, responses the raw bytes that came back; the bridge
runs them without interpreting them, the cloud plans and decodes. Unknown fields are ignored (so a
newer peer may add some); missing or wrongly typed ones are ``ProtocolError(INVALID_MESSAGE)``.

Kinds (direction):
  hello (up)         bridge_id, site_id, version, now_ms, buses[]      first message after connect
  heartbeat (both)   now_ms, queued                                    keeps the socket inside idle limits
  batch (down)       cycle, bus, txns[{id, req, timeout_ms}], every_s  one bus's queue of one reading cycle;
                     every_s > 0 makes it the cached read plan repeated while the cloud is unreachable
  command (down)     cmd, bus, txns[...]                               one-shot writes + read-backs, run next
  batch_result (up)  cycle, bus, results[{id, resp|null, error|null, t0_ms, t1_ms}]   cycle = the
                     batch's cycle or the command's cmd
  upload (up)        ref, results[batch_result...]                     buffered results, oldest first
  ack (both)         ref, ok, error                                    acks a cycle / cmd / upload / rekey
  rekey (down)       ref, key{id, suite, enc, mac, created_ms}         next key, see package docstring
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .errors import ProtocolError, Reason
from .keys import CollectorKey
from .strict import b64decode, b64encode, dumps, loads

MAX_RTU_BYTES = 256  # Modbus RTU ADU maximum
MAX_TXNS = 1024
MAX_RESULT_SETS = 512
MAX_TS_MS = 2**53  # JSON-safe integer
_ID_RE = re.compile(r"[A-Za-z0-9._:@/#-]{1,64}")


class TxnError(StrEnum):
    """Why a transaction has no response (the bridge does not judge response contents)."""

    TIMEOUT = "timeout"  # nothing came back in time
    IO = "io"  # the collector / port failed
    SKIPPED = "skipped"  # not attempted: meter in back-off, or the batch was cut short


@dataclass(frozen=True)
class Txn:
    id: str
    req: bytes
    timeout_ms: int = 1000


@dataclass(frozen=True)
class TxnResult:
    id: str
    resp: bytes | None
    error: TxnError | None
    t0_ms: int
    t1_ms: int


@dataclass(frozen=True)
class Hello:
    bridge_id: str
    site_id: str
    version: str
    now_ms: int
    buses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Heartbeat:
    now_ms: int
    queued: int = 0


@dataclass(frozen=True)
class Batch:
    cycle: str
    bus: str
    txns: tuple[Txn, ...]
    every_s: int = 0


@dataclass(frozen=True)
class Command:
    cmd: str
    bus: str
    txns: tuple[Txn, ...]


@dataclass(frozen=True)
class BatchResult:
    cycle: str
    bus: str
    results: tuple[TxnResult, ...]


@dataclass(frozen=True)
class Upload:
    ref: str
    results: tuple[BatchResult, ...]


@dataclass(frozen=True)
class Ack:
    ref: str
    ok: bool = True
    error: str | None = None


@dataclass(frozen=True)
class Rekey:
    ref: str
    key: CollectorKey


Message = Hello | Heartbeat | Batch | Command | BatchResult | Upload | Ack | Rekey


def _bad(detail: str) -> ProtocolError:
    return ProtocolError(Reason.INVALID_MESSAGE, detail)


def _obj(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _bad(f"{what} is not an object")
    return value


def _ident(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise _bad(f"{name} missing or not an id")
    return value


def _text(data: Mapping[str, Any], name: str, max_len: int = 200) -> str:
    value = data.get(name)
    if not isinstance(value, str) or len(value) > max_len:
        raise _bad(f"{name} missing or too long")
    return value


def _int(data: Mapping[str, Any], name: str, hi: int, default: int | None = None) -> int:
    value = data.get(name, default)
    # bool is an int subclass in Python; true/false must not pass as numbers.
    if type(value) is not int or not 0 <= value <= hi:
        raise _bad(f"{name} missing or out of range")
    return value


def _list(data: Mapping[str, Any], name: str, max_items: int) -> list[Any]:
    value = data.get(name)
    if not isinstance(value, list) or len(value) > max_items:
        raise _bad(f"{name} missing or too long a list")
    return value


def _rtu(value: object, name: str) -> bytes:
    try:
        raw = b64decode(value, name, (MAX_RTU_BYTES + 2) // 3 * 4)
    except ProtocolError:
        raise _bad(f"{name} is not base64 of an RTU frame") from None
    if not raw:
        raise _bad(f"{name} is empty")
    return raw


def _txn(value: object) -> Txn:
    data = _obj(value, "txn")
    return Txn(_ident(data, "id"), _rtu(data.get("req"), "req"), _int(data, "timeout_ms", 60_000, 1000))


def _txn_result(value: object) -> TxnResult:
    data = _obj(value, "result")
    resp, error = data.get("resp"), data.get("error")
    if (resp is None) == (error is None):
        raise _bad("a result has exactly one of resp / error")
    try:
        err = None if error is None else TxnError(error)
    except ValueError:
        raise _bad("unknown txn error") from None
    raw = None if resp is None else _rtu(resp, "resp")
    t0, t1 = _int(data, "t0_ms", MAX_TS_MS), _int(data, "t1_ms", MAX_TS_MS)
    return TxnResult(_ident(data, "id"), raw, err, t0, t1)


def _txns(data: Mapping[str, Any]) -> tuple[Txn, ...]:
    return tuple(_txn(item) for item in _list(data, "txns", MAX_TXNS))


def _batch_result(data: Mapping[str, Any]) -> BatchResult:
    results = tuple(_txn_result(item) for item in _list(data, "results", MAX_TXNS))
    return BatchResult(_ident(data, "cycle"), _ident(data, "bus"), results)


def _hello(data: Mapping[str, Any]) -> Hello:
    buses = tuple(_ident({"bus": b}, "bus") for b in _list(data, "buses", 64))
    return Hello(_ident(data, "bridge_id"), _ident(data, "site_id"), _text(data, "version", 64),
                 _int(data, "now_ms", MAX_TS_MS), buses)


def _ack(data: Mapping[str, Any]) -> Ack:
    ok, error = data.get("ok"), data.get("error")
    if not isinstance(ok, bool) or not (error is None or (isinstance(error, str) and len(error) <= 200)):
        raise _bad("ack needs ok: bool and error: short text or null")
    return Ack(_ident(data, "ref"), ok, error)


def _rekey(data: Mapping[str, Any]) -> Rekey:
    try:
        key = CollectorKey.from_dict(data.get("key"))
    except ProtocolError as err:
        raise _bad(f"rekey key: {err.detail}") from None
    return Rekey(_ident(data, "ref"), key)


def _upload(data: Mapping[str, Any]) -> Upload:
    sets = _list(data, "results", MAX_RESULT_SETS)
    return Upload(_ident(data, "ref"), tuple(_batch_result(_obj(s, "result set")) for s in sets))


_PARSERS: dict[str, Callable[[Mapping[str, Any]], Message]] = {
    "hello": _hello,
    "heartbeat": lambda d: Heartbeat(_int(d, "now_ms", MAX_TS_MS), _int(d, "queued", 2**31, 0)),
    "batch": lambda d: Batch(_ident(d, "cycle"), _ident(d, "bus"), _txns(d), _int(d, "every_s", 86_400, 0)),
    "command": lambda d: Command(_ident(d, "cmd"), _ident(d, "bus"), _txns(d)),
    "batch_result": _batch_result,
    "upload": _upload,
    "ack": _ack,
    "rekey": _rekey,
}


def parse_message(payload: bytes) -> Message:
    """Validate an opened payload into a typed message; only ``ProtocolError`` escapes."""
    data = _obj(loads(payload, "message"), "message")
    kind = data.get("k")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise _bad("unknown message kind")
    return parser(data)


def _txn_json(txn: Txn) -> dict[str, Any]:
    return {"id": txn.id, "req": b64encode(txn.req), "timeout_ms": txn.timeout_ms}


def _result_json(res: TxnResult) -> dict[str, Any]:
    return {
        "id": res.id,
        "resp": None if res.resp is None else b64encode(res.resp),
        "error": None if res.error is None else res.error.value,
        "t0_ms": res.t0_ms,
        "t1_ms": res.t1_ms,
    }


def _set_json(res: BatchResult) -> dict[str, Any]:
    return {"cycle": res.cycle, "bus": res.bus, "results": [_result_json(r) for r in res.results]}


def _fields(msg: Message) -> tuple[str, dict[str, Any]]:
    # One flat match keeps the wire spelling of every kind in one place, beside its parser above.
    match msg:
        case Hello():
            return "hello", {"bridge_id": msg.bridge_id, "site_id": msg.site_id, "version": msg.version,
                             "now_ms": msg.now_ms, "buses": list(msg.buses)}
        case Heartbeat():
            return "heartbeat", {"now_ms": msg.now_ms, "queued": msg.queued}
        case Batch():
            return "batch", {"cycle": msg.cycle, "bus": msg.bus, "every_s": msg.every_s,
                             "txns": [_txn_json(t) for t in msg.txns]}
        case Command():
            return "command", {"cmd": msg.cmd, "bus": msg.bus, "txns": [_txn_json(t) for t in msg.txns]}
        case BatchResult():
            return "batch_result", _set_json(msg)
        case Upload():
            return "upload", {"ref": msg.ref, "results": [_set_json(s) for s in msg.results]}
        case Ack():
            return "ack", {"ref": msg.ref, "ok": msg.ok, "error": msg.error}
        case Rekey():
            return "rekey", {"ref": msg.ref, "key": msg.key.to_dict()}
    raise TypeError(f"not a protocol message: {type(msg).__name__}")


def encode_message(msg: Message | Mapping[str, Any]) -> bytes:
    """Compact JSON bytes of a message (a plain mapping is encoded as given)."""
    if isinstance(msg, Mapping):
        try:
            return dumps(dict(msg)).encode("ascii")
        except (TypeError, ValueError):
            raise _bad("mapping is not JSON-serialisable") from None
    kind, fields = _fields(msg)
    return dumps({"k": kind, **fields}).encode("ascii")
