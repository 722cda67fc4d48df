"""A cookie-keeping wrapper around Chalice's in-process test client, for page and form tests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from chalice.test import Client, HTTPResponse

HIDDEN = re.compile(r'name="(?P<name>csrf_token|login_csrf)" value="(?P<value>[^"]*)"')


class PortalClient:
    def __init__(self, client: Client) -> None:
        self._http = client.http
        self.cookies: dict[str, str] = {}

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        headers.update(extra or {})
        return headers

    def _keep_cookies(self, response: HTTPResponse) -> HTTPResponse:
        raw = response.headers.get("Set-Cookie") or response.headers.get("set-cookie") or []
        for cookie in [raw] if isinstance(raw, str) else raw:
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in cookie:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return response

    def get(self, path: str, headers: dict[str, str] | None = None) -> HTTPResponse:
        return self._keep_cookies(self._http.get(path, headers=self._headers(headers)))

    def post_form(self, path: str, fields: dict[str, Any], *, with_token_from: str | None = None,
                  headers: dict[str, str] | None = None) -> HTTPResponse:
        body = dict(fields)
        if with_token_from is not None:
            body.update(hidden_tokens(self.get(with_token_from)))
        headers = self._headers({"content-type": "application/x-www-form-urlencoded", **(headers or {})})
        return self._keep_cookies(self._http.post(path, headers=headers, body=urlencode(body, doseq=True).encode()))

    def post_json(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> HTTPResponse:
        merged = self._headers({"content-type": "application/json", **(headers or {})})
        return self._keep_cookies(self._http.post(path, headers=merged, body=body))

    def log_in(self, company: str, username: str, password: str) -> HTTPResponse:
        return self.post_form("/login", {"company": company, "username": username, "password": password},
                              with_token_from="/login")


def hidden_tokens(response: HTTPResponse) -> dict[str, str]:
    return {m["name"]: m["value"] for m in HIDDEN.finditer(response.body.decode())}


def iter_lines(response: HTTPResponse) -> Iterator[str]:
    yield from response.body.decode().splitlines()
