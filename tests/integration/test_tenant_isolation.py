"""Operator A's administrator, API client and shop tenant call every route that names an object with operator B's
ids, and A's tenant calls the tenant routes with another shop's ids: every call is refused, no answer shows the other
party's data, and the other party's data is unchanged. (``make bench ONLY=tenant_isolation`` prints the counts.)"""

from __future__ import annotations

from chalice.test import Client

from app import app
from tests.conftest import OperatorFixture
from tests.support.tenant_isolation import prepare_both, snapshot, sweep


def test_no_route_lets_one_party_reach_anothers_objects(client: Client, new_operator: OperatorFixture,
                                                        other_operator: OperatorFixture) -> None:
    mine, other, other_shop = prepare_both(new_operator.operator_id, new_operator.admin_password,
                                           other_operator.operator_id, other_operator.admin_password)
    b, a_shop = other.ids, other_shop.ids
    before = (snapshot(b["operator_id"], b["site_id"], b["account_id"], b["invitation_id"]),
              snapshot(a_shop["operator_id"], a_shop["site_id"], a_shop["account_id"]))

    outcome = sweep(client, app, mine, other, other_shop)

    assert outcome.calls > 80
    assert outcome.server_errors == []
    assert outcome.leaks == []
    assert outcome.not_refused == []
    assert (snapshot(b["operator_id"], b["site_id"], b["account_id"], b["invitation_id"]),
            snapshot(a_shop["operator_id"], a_shop["site_id"], a_shop["account_id"])) == before
