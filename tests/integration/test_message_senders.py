"""The SMS (SNS) and e-mail (SES) senders used in AWS, against moto: no AWS account reaches this machine, and no
local process serves either API."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from moto.sns.models import sns_backends

from chalicelib.adapters.email import SesEmailSender
from chalicelib.adapters.sms import SnsSmsSender

REGION = "us-east-1"


@pytest.fixture()
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


def test_an_sms_goes_out_through_sns_as_a_transactional_message(aws: None) -> None:
    message_id = SnsSmsSender(boto3.client("sns", region_name=REGION)).send("+8613800138104", "【Voltvend】余额不足")

    assert dict(sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages) == {
        message_id: ("+8613800138104", "【Voltvend】余额不足")}


def test_an_e_mail_goes_out_through_ses_from_the_verified_sender(aws: None) -> None:
    client = boto3.client("ses", region_name=REGION)
    client.verify_email_identity(EmailAddress="no-reply@power.example.com")
    sender = SesEmailSender("Voltvend <no-reply@power.example.com>", client)

    message_id = sender.send("reader@example.com", "Voltvend", "Reset your password: https://power.example.com/t/x")

    [sent] = ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages
    assert sent.id == message_id and sent.destinations == {"ToAddresses": ["reader@example.com"]}
    assert (sent.source, sent.subject, sent.body) == ("Voltvend <no-reply@power.example.com>", "Voltvend",
                                                      "Reset your password: https://power.example.com/t/x")


def test_ses_refuses_a_sender_it_has_not_verified(aws: None) -> None:
    sender = SesEmailSender("Voltvend <nobody@unverified.example>", boto3.client("ses", region_name=REGION))

    with pytest.raises(Exception, match="not verified"):  # the notifier records the refusal on the message
        sender.send("reader@example.com", "Voltvend", "text")
