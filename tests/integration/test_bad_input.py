"""Every HTTP route, called by signed-in users with malformed, missing, oversized and wrong-typed input: never a
server error, and every refusal says why. (``make bench ONLY=bad_input`` runs the full set of variants.)"""

from __future__ import annotations

from chalice.test import Client

from app import app
from tests.conftest import OperatorFixture
from tests.support.bad_input import prepare, routes, sweep


def test_no_route_answers_bad_input_with_a_server_error(client: Client, new_operator: OperatorFixture) -> None:
    ids = prepare(new_operator.operator_id, new_operator.admin_password)

    outcome = sweep(client, app, ids, quick=True)

    assert outcome.calls > 5 * len(routes(app))
    assert outcome.server_errors == []
    assert outcome.unexplained == []
    assert outcome.unescaped == []
    assert outcome.by_status[200] > 0 and sum(n for s, n in outcome.by_status.items() if 400 <= s < 500) > 0
