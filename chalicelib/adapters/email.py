"""E-mail delivery (password resets of tenants who sign in by e-mail): Amazon SES in AWS, the local outbox (shown in
the portal) in the demo and tests."""

from __future__ import annotations

from typing import Any


class LocalOutboxEmailSender:
    """Sends nothing: the message stays in the outbox, where the portal shows it as delivered locally."""

    def send(self, address: str, subject: str, text: str) -> str:
        return "local-outbox"


class SesEmailSender:
    def __init__(self, sender: str, client: Any = None) -> None:
        import boto3

        self._client = client or boto3.client("ses")
        self._sender = sender  # an address or domain verified in SES

    def send(self, address: str, subject: str, text: str) -> str:
        answer = self._client.send_email(
            Source=self._sender, Destination={"ToAddresses": [address]},
            Message={"Subject": {"Data": subject, "Charset": "UTF-8"},
                     "Body": {"Text": {"Data": text, "Charset": "UTF-8"}}})
        return str(answer["MessageId"])
