"""SMS delivery: Amazon SNS in AWS, the local outbox (shown in the portal) in the demo and tests."""

from __future__ import annotations

from typing import Any


class LocalOutboxSender:
    """Sends nothing: the message stays in the outbox, where the portal shows it as delivered locally."""

    def send(self, phone: str, text: str) -> str:
        return "local-outbox"


class SnsSmsSender:
    def __init__(self, client: Any = None, sender_id: str = "Voltvend") -> None:
        import boto3

        self._client = client or boto3.client("sns")
        self._sender_id = sender_id

    def send(self, phone: str, text: str) -> str:
        attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"},
                      "AWS.SNS.SMS.SenderID": {"DataType": "String", "StringValue": self._sender_id}}
        answer = self._client.publish(PhoneNumber=phone, Message=text, MessageAttributes=attributes)
        return str(answer["MessageId"])
