"""Number attributes that never hand back a float.

PynamoDB's NumberAttribute deserialises through ``json.loads``, so 12.5 comes back as a float. Money
and energy must stay exact: integers (minor units, 0.01 kWh) or Decimals.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from pynamodb.attributes import Attribute
from pynamodb.constants import NUMBER, STRING


class IntegerAttribute(Attribute[int]):
    """An integer; refuses floats and bools on the way in, returns ``int`` on the way out."""

    attr_type = NUMBER

    def serialize(self, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"IntegerAttribute takes an int, not {type(value).__name__}")
        return str(value)

    def deserialize(self, value: str) -> int:
        return int(value)


class DecimalAttribute(Attribute[Decimal]):
    """An exact decimal stored as a DynamoDB number."""

    attr_type = NUMBER

    def serialize(self, value: Decimal) -> str:
        if not isinstance(value, Decimal):
            raise TypeError(f"DecimalAttribute takes a Decimal, not {type(value).__name__}")
        return str(value)

    def deserialize(self, value: str) -> Decimal:
        return Decimal(value)


class JSONDictAttribute(Attribute[Any]):
    """A small JSON object kept as text (before/after snapshots); numbers parse as Decimal, never float."""

    attr_type = STRING

    def serialize(self, value: Any) -> str:
        return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)

    def deserialize(self, value: str) -> Any:
        return json.loads(value, parse_float=Decimal)
