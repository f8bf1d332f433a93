"""Standard Webhooks signing: the published test vector, the reference library in both directions, secret rotation,
and every reason `verify` refuses a delivery."""

import base64
import time
from datetime import UTC, datetime

import pytest

from mcp_crm.webhooks.signing import headers, new_secret, sign, signature_header, verify

# The example from the Standard Webhooks test suites.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MESSAGE_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_new_secrets_are_whsec_and_24_random_bytes():
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 24
    assert first != second


def test_sign_matches_the_published_example():
    assert sign(SECRET, MESSAGE_ID, TIMESTAMP, BODY) == SIGNATURE


def test_a_bad_secret_is_refused_rather_than_used():
    with pytest.raises(ValueError, match="base64"):
        sign("whsec_not base64!", MESSAGE_ID, TIMESTAMP, BODY)
    with pytest.raises(ValueError, match="empty"):
        sign("whsec_", MESSAGE_ID, TIMESTAMP, BODY)


def test_headers_carry_id_timestamp_signature_and_json_type():
    assert headers([SECRET], MESSAGE_ID, TIMESTAMP, BODY) == {
        "Webhook-Id": MESSAGE_ID,
        "Webhook-Timestamp": str(TIMESTAMP),
        "Webhook-Signature": SIGNATURE,
        "Content-Type": "application/json",
    }


def test_during_rotation_both_secrets_sign_and_either_verifies():
    old, new = new_secret(), new_secret()
    sent = headers([new, old], MESSAGE_ID, TIMESTAMP, BODY)
    assert sent["Webhook-Signature"].split(" ") == [sign(key, MESSAGE_ID, TIMESTAMP, BODY) for key in (new, old)]
    verify(new, sent, BODY, now=TIMESTAMP)
    verify(old, sent, BODY, now=TIMESTAMP)
    with pytest.raises(ValueError, match="no webhook-signature matches"):
        verify(new_secret(), sent, BODY, now=TIMESTAMP)


def test_signing_needs_a_secret():
    with pytest.raises(ValueError, match="at least one secret"):
        signature_header([], MESSAGE_ID, TIMESTAMP, BODY)


def test_verify_looks_headers_up_in_any_case():
    sent = headers([SECRET], MESSAGE_ID, TIMESTAMP, BODY)
    verify(SECRET, {name.lower(): value for name, value in sent.items()}, BODY, now=TIMESTAMP)
    verify(SECRET, {name.upper(): value for name, value in sent.items()}, BODY, now=TIMESTAMP)


@pytest.mark.parametrize("missing", ["Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"])
def test_verify_names_a_missing_header(missing):
    sent = headers([SECRET], MESSAGE_ID, TIMESTAMP, BODY)
    del sent[missing]
    with pytest.raises(ValueError, match=f"missing {missing.lower()} header"):
        verify(SECRET, sent, BODY, now=TIMESTAMP)


@pytest.mark.parametrize(
    ("now", "reason"), [(TIMESTAMP + 301, "301s old"), (TIMESTAMP - 301, "301s in the future")], ids=["old", "future"]
)
def test_verify_refuses_a_timestamp_outside_the_tolerance(now, reason):
    sent = headers([SECRET], MESSAGE_ID, TIMESTAMP, BODY)
    verify(SECRET, sent, BODY, now=TIMESTAMP + 300)
    verify(SECRET, sent, BODY, now=TIMESTAMP - 300)
    with pytest.raises(ValueError, match=reason):
        verify(SECRET, sent, BODY, now=now)


def test_verify_refuses_a_timestamp_that_is_not_whole_seconds():
    sent = headers([SECRET], MESSAGE_ID, TIMESTAMP, BODY) | {"Webhook-Timestamp": "1614265330.5"}
    with pytest.raises(ValueError, match="whole seconds"):
        verify(SECRET, sent, BODY, now=TIMESTAMP)


@pytest.mark.parametrize(
    ("change", "body"),
    [
        ({}, BODY + b" "),
        ({"Webhook-Id": "msg_other"}, BODY),
        ({"Webhook-Timestamp": str(TIMESTAMP + 1)}, BODY),
        ({"Webhook-Signature": "v1,AAAA"}, BODY),
        ({"Webhook-Signature": SIGNATURE.replace("v1,", "v2,")}, BODY),
    ],
    ids=["body", "id", "timestamp", "signature", "version"],
)
def test_verify_refuses_anything_tampered_with(change, body):
    sent = headers([SECRET], MESSAGE_ID, TIMESTAMP, BODY) | change
    with pytest.raises(ValueError, match="no webhook-signature matches"):
        verify(SECRET, sent, body, now=TIMESTAMP)


def test_the_reference_library_verifies_our_deliveries_and_we_verify_its_signatures():
    reference = pytest.importorskip("standardwebhooks.webhooks")
    secret, now = new_secret(), int(time.time())
    body = b'{"type": "contact.created", "data": {"name": "Zo\xc3\xab"}}'
    assert reference.Webhook(secret).verify(body, headers([secret], "msg_1", now, body)) == {
        "type": "contact.created",
        "data": {"name": "Zoë"},
    }
    theirs = reference.Webhook(secret).sign("msg_1", datetime.fromtimestamp(now, UTC), body.decode())
    assert theirs == sign(secret, "msg_1", now, body)
    verify(secret, {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": theirs}, body, now)
