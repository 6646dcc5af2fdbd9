"""The store hands back each recipient with the ETag it was written with (tables._with_etag): the same
recipient dataclasses.replace would make, without running Recipient.__init__ again."""
from dataclasses import fields, replace
from datetime import datetime, timezone

from sms.domain.model import Event, Recipient, Status
from sms.storage.tables import _with_etag


def test_a_recipient_with_its_etag_is_replaces_copy_with_every_field_kept():
    at = datetime(2026, 12, 5, 23, 0, tzinfo=timezone.utc)
    recipient = Recipient(
        comm_id="c" * 32, seq=7, recipient_id="r" * 32, phone_number="+61412345678", name="Sam", contact_id="k-1",
        status=Status.SENT, provider_message_id="SM1", attempts=2, last_error="busy", created_at=at, updated_at=at,
        first_attempt_at=at, claim_id="claim", etag='W/"old"', events=(Event(Status.SENDING, at),), events_omitted=1)
    stored = _with_etag(recipient, 'W/"new"')
    assert stored == replace(recipient, etag='W/"new"') and stored is not recipient
    assert {f.name: getattr(stored, f.name) for f in fields(Recipient) if f.name != "etag"} == \
           {f.name: getattr(recipient, f.name) for f in fields(Recipient) if f.name != "etag"}
    assert recipient.etag == 'W/"old"'  # the original is untouched


def test_the_shortcut_stays_valid_only_while_recipient_has_no_post_init_and_no_slots():
    # _with_etag copies the instance's __dict__: a __post_init__ would be skipped, and slots have no __dict__.
    assert not hasattr(Recipient, "__post_init__") and not hasattr(Recipient, "__slots__")
