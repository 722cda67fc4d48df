"""Where archived readings go: a folder locally, an S3 bucket in AWS; the same object layout in both.

Layout (queryable by Athena, DuckDB or plain zcat; see docs/archive-format.md):
``readings/operator=<op>/meter=<meter>/month=<yyyy-mm>/<first>-<last>.jsonl.gz``
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class FolderArchive:
    def __init__(self, root: Path) -> None:
        self._root = root

    def put(self, key: str, data: bytes) -> None:
        path = self._root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(path.suffix + ".part")
        temporary.write_bytes(data)
        temporary.replace(path)  # readers never see half an object

    def get(self, key: str) -> bytes:
        return (self._root / key).read_bytes()

    def keys(self, prefix: str) -> list[str]:
        base = self._root / prefix
        if not base.exists():
            return []
        return sorted(str(p.relative_to(self._root)) for p in base.rglob("*.jsonl.gz"))


class S3Archive:
    def __init__(self, bucket: str, client: Any = None) -> None:
        import boto3

        self._bucket = bucket
        self._client = client or boto3.client("s3")

    def put(self, key: str, data: bytes) -> None:
        self._client.put_object(Bucket=self._bucket, Key=key, Body=data,
                                ContentType="application/x-ndjson", ContentEncoding="gzip")

    def get(self, key: str) -> bytes:
        return bytes(self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read())

    def keys(self, prefix: str) -> list[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        return sorted(o["Key"] for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix)
                      for o in page.get("Contents", []))
