"""Pushing frames to a bridge's WebSocket through API Gateway's management API (or the local stand-in)."""

from __future__ import annotations

import logging
from typing import Any

import boto3
from botocore.config import Config

from chalicelib.ports import ConnectionGone

LOG = logging.getLogger("voltvend.bridge.sender")


class ManagementApiSender:
    def __init__(self, endpoint_url: str, region: str) -> None:
        local = endpoint_url.startswith("http://")
        credentials: dict[str, Any] = {"aws_access_key_id": "local", "aws_secret_access_key": "local"} if local else {}
        self._client = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint_url, region_name=region,
                                    config=Config(retries={"max_attempts": 2}, connect_timeout=3, read_timeout=10),
                                    **credentials)

    def send(self, connection_id: str, text: str) -> None:
        try:
            self._client.post_to_connection(ConnectionId=connection_id, Data=text.encode("utf-8"))
        except self._client.exceptions.GoneException as exc:
            raise ConnectionGone(connection_id) from exc
