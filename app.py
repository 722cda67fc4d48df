"""Voltvend's Chalice application: blueprints and middleware only; the work lives in chalicelib."""

from __future__ import annotations

from chalice import Chalice

from chalicelib.api import auth_pages, oplog_pages, rest_v1, site_pages, staff_pages, static_files
from chalicelib.jobs import maintenance
from chalicelib.web.guards import request_middleware

app = Chalice(app_name="voltvend")
app.experimental_feature_flags.update(["WEBSOCKETS"])
app.register_middleware(request_middleware, "http")

for blueprint in (auth_pages.bp, staff_pages.bp, oplog_pages.bp, site_pages.bp, static_files.bp, rest_v1.bp):
    app.register_blueprint(blueprint)
app.register_blueprint(maintenance.bp)
