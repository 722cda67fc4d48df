"""File uploads from HTML forms: a small, strict ``multipart/form-data`` reader over Chalice's raw body.

The standard library no longer has one (``cgi`` is deprecated), and ``email``'s parser rewrites line endings
of text parts, which would change the bytes of a CSV file. Locally Chalice passes the body's bytes as they
came; in AWS API Gateway base64-encodes it because the settings blueprint lists ``multipart/form-data`` among
the binary media types, and Chalice decodes it again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from chalice.app import Request

from chalicelib.domain.errors import ValidationError

MAX_UPLOAD_BYTES = 4 * 1024 * 1024 + 64 * 1024  # a 2 MB file, or a checked one carried back as text, plus fields
MAX_PARTS = 20
FIELDS_AHEAD_BYTES = 64 * 1024
_BOUNDARY = re.compile(r'boundary="?([^";,]{1,70})"?', re.IGNORECASE)
_PARAMETER = re.compile(r'(name|filename)="([^"]*)"', re.IGNORECASE)


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class MultipartForm:
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)

    def first(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[0] if values else default


def is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith("multipart/form-data")


def parse_multipart(request: Request) -> MultipartForm:
    body = _body(request)
    if len(body) > MAX_UPLOAD_BYTES:
        from chalicelib.domain.meter_import import FileTooLarge

        raise FileTooLarge("too_large")
    parts = _split(body, request)
    if len(parts) < 3 or len(parts) > MAX_PARTS + 2:
        raise ValidationError("the upload is not a well-formed multipart form")
    form = MultipartForm()
    for part in parts[1:-1]:  # before the first delimiter: preamble; after the last ("--"): epilogue
        _add_part(form, part)
    return form


def _body(request: Request) -> bytes:
    raw = request.raw_body or b""
    return raw.encode("utf-8") if isinstance(raw, str) else raw


def _split(body: bytes, request: Request) -> list[bytes]:
    match = _BOUNDARY.search(request.headers.get("content-type", ""))
    if match is None:
        raise ValidationError("the upload is not a multipart form")
    return (b"\r\n" + body).split(b"\r\n--" + match[1].encode("latin-1"))


def _add_part(form: MultipartForm, part: bytes) -> None:
    head, separator, content = part.partition(b"\r\n\r\n")
    if not separator:
        raise ValidationError("the upload is not a well-formed multipart form")
    headers = _part_headers(head)
    parameters = {k.lower(): v for k, v in _PARAMETER.findall(headers.get("content-disposition", ""))}
    name = parameters.get("name")
    if not name:
        return
    if "filename" in parameters:
        if parameters["filename"] or content:
            form.files[name] = UploadedFile(parameters["filename"], headers.get("content-type", ""), content)
        return
    try:
        form.fields.setdefault(name, []).append(content.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValidationError("the form is not UTF-8") from None


def _part_headers(head: bytes) -> dict[str, str]:
    """Header lines of one part; browsers send file names as raw UTF-8 there."""
    headers: dict[str, str] = {}
    for line in head.decode("utf-8", errors="replace").split("\r\n"):
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return headers


def multipart_field(request: Request, name: str) -> str:
    """One text field from the start of a multipart form, or "" (for the CSRF check). Only the fields ahead of
    the file are read, so an oversized upload still gets its clear "too large" answer rather than a CSRF one."""
    try:
        parts = _split(_body(request)[:FIELDS_AHEAD_BYTES], request)
        form = MultipartForm()
        for part in parts[1:-1][:MAX_PARTS]:  # the last piece may be cut short: it is never read
            _add_part(form, part)
    except ValidationError:
        return ""
    return form.first(name)
