"""Voltvend's Chalice app: blueprints, middleware and one-line WebSocket handlers; the work is in chalicelib."""

from __future__ import annotations

from chalice import Chalice, Response
from chalice.app import WebsocketEvent

from chalicelib.api import (
    alarm_pages,
    auth_pages,
    board_pages,
    bridge_ws,
    meter_pages,
    oplog_pages,
    payment_pages,
    rest_v1,
    sales_api,
    sales_pages,
    settings_pages,
    site_pages,
    site_settings_pages,
    staff_pages,
    static_files,
    tenant_pages,
    webhooks,
)
from chalicelib.jobs import archival, deliveries, maintenance, notifications, presence, reconciliation, rollups
from chalicelib.web.guards import request_middleware

app = Chalice(app_name="voltvend")
app.experimental_feature_flags.update(["WEBSOCKETS"])
app.register_middleware(request_middleware, "http")
# Receipts (PDF) and exports (Excel) leave API Gateway as binary, not text.
app.api.binary_types.extend(["application/pdf", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"])

PAGES_AND_API = (alarm_pages.bp, auth_pages.bp, staff_pages.bp, oplog_pages.bp, site_pages.bp, static_files.bp,
                 rest_v1.bp, sales_pages.bp, sales_api.bp, meter_pages.bp, tenant_pages.bp, settings_pages.bp,
                 board_pages.bp, payment_pages.bp, webhooks.bp)
for blueprint in PAGES_AND_API:
    app.register_blueprint(blueprint)
app.register_blueprint(site_settings_pages.bp)  # system settings by hand (sites, buildings, units, collectors, meters)
for job in (maintenance.bp, archival.bp, presence.bp, notifications.bp, rollups.bp, deliveries.bp,
            reconciliation.bp):
    app.register_blueprint(job)


@app.on_ws_connect()
def bridge_connect(event: WebsocketEvent) -> Response:
    return bridge_ws.connect(event)


@app.on_ws_message()
def bridge_message(event: WebsocketEvent) -> None:
    bridge_ws.message(event)


@app.on_ws_disconnect()
def bridge_disconnect(event: WebsocketEvent) -> None:
    bridge_ws.disconnect(event)
