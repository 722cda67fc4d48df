"""Nightly reconciliation: ledger against meter registers and stored balances; discrepancies become alarms."""

from __future__ import annotations

import logging
from typing import Any

from chalice import Blueprint

from chalicelib.bootstrap import get_services

bp = Blueprint(__name__)
LOG = logging.getLogger("voltvend.jobs.reconciliation")


@bp.schedule("rate(1 hour)")
def reconcile_ledgers(event: Any) -> dict[str, int]:
    services = get_services()
    found = 0
    for operator_id in services.tenancy.operator_ids():
        findings = services.reconciliation.run(operator_id)
        for finding in findings:
            LOG.error("reconciliation: %s on %s: %s", finding.discrepancy.kind, finding.discrepancy.subject,
                      finding.discrepancy.message)
        found += len(findings)
    return {"discrepancies": found}
