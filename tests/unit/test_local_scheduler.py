from __future__ import annotations

import pytest

from infra.local.scheduler import rate_seconds


@pytest.mark.parametrize(("expression", "seconds"), [("rate(1 minute)", 60), ("rate(15 minutes)", 900),
                                                     ("rate(2 hours)", 7200), ("rate(1 day)", 86400)])
def test_rate_expressions(expression: str, seconds: int) -> None:
    assert rate_seconds(expression) == seconds


def test_cron_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="rate"):
        rate_seconds("cron(0 12 * * ? *)")
