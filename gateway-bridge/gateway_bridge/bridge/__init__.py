"""The gateway bridge service: bus workers, the store-and-forward buffer and the tunnel to the cloud.

Module map: ``config`` (TOML), ``links`` + ``framing`` (raw RTU exchanges with collectors), ``bus``
(one sequential worker per collector), ``schedule`` (standing read plans), ``store`` (SQLite),
``channels`` (sealing/opening, key rings), ``tunnel`` (the WebSocket), ``outbox`` (results until
acked), ``dispatch`` (what the cloud asks), ``status``, ``scan``, and ``service`` which wires them.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("voltvend-gateway-bridge")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0.0.0+source"
