"""The portal's few static assets (CSS, icons), served by the same function with long caching."""

from __future__ import annotations

import re

from chalice import Blueprint
from chalice.app import Response

from chalicelib.web.guards import json_error
from chalicelib.web.rendering import PORTAL_DIR

bp = Blueprint(__name__)
NAME = re.compile(r"^[a-z0-9_-]{1,40}\.(css|js|svg)$")
TYPES = {"css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8", "svg": "image/svg+xml"}


@bp.route("/static/{name}", methods=["GET"])
def static_file(name: str) -> Response:
    if not NAME.match(name):
        return json_error(404, "no such file")
    path = PORTAL_DIR / "static" / name
    if not path.is_file():
        return json_error(404, "no such file")
    return Response(body=path.read_text(encoding="utf-8"), status_code=200,
                    headers={"Content-Type": TYPES[name.rsplit(".", 1)[1]], "Cache-Control": "public, max-age=3600"})
