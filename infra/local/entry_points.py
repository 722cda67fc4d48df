"""Find the callable Lambda would invoke for a Chalice handler.

App-level decorators leave the wrapped handler in ``app.handler_map``; blueprint decorators leave the
plain function there and the wrapped handler at the module attribute named by ``handler_string``,
which is what Lambda imports. Both are served the same way here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from chalice.app import EventSourceHandler


def lambda_entry(app: Any, name: str, handler_string: str) -> Callable[[dict[str, Any], Any], Any]:
    handler = app.handler_map[name]
    if isinstance(handler, EventSourceHandler):
        return handler
    module_name, _, attribute = handler_string.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)
