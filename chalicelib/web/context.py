"""Per-request state, set once by the middleware: who is calling and in which language."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from chalicelib.domain.actor import Actor


@dataclass(frozen=True)
class RequestState:
    actor: Actor | None
    locale: str
    via_bearer: bool = False
    path: str = "/dashboard"


_STATE: ContextVar[RequestState | None] = ContextVar("voltvend_request_state", default=None)


def set_state(state: RequestState | None) -> None:
    _STATE.set(state)


def get_state() -> RequestState:
    state = _STATE.get()
    return state if state is not None else RequestState(actor=None, locale="en")
