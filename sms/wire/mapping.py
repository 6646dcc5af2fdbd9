"""ServiceStack DTOs to the use cases' commands, and their answers back to DTOs: the only place the
two shapes meet, so a change to the contract stops here."""
from __future__ import annotations

from ..usecases.commands import MessageReport, Party, SendMessage, SendResult
from .dto import CommResponse, MessageState, RecipientEvent, RecipientState, ReplyState, SMSContact, SMSSend


def send_command(request: SMSSend) -> SendMessage:
    # The canonical dump is what an Idempotency-Key's retry is compared with: keep it the DTO's, so
    # keys stored before a change here still match their retries.
    as_sent = request.model_dump_json()
    model = request.sms_model
    if model is None:
        return SendMessage(as_sent=as_sent, missing=True)
    return SendMessage(
        as_sent=as_sent, licensee_id=model.licensee_id, sender=_party(model.from_) if model.from_ is not None else None,
        to=tuple(_party(c) for c in model.to or ()), body=model.message_body,
        reply_is_allowed=model.reply_is_allowed, reply_is_required=model.reply_is_required, notes=model.notes,
        linked_object_id=model.linked_object_id, suite_id=model.suite_id,
    )


def _party(contact: SMSContact) -> Party:
    return Party(contact.name, contact.phone_number, contact.contact_id)


def comm_response(result: SendResult) -> CommResponse:
    return CommResponse(comm_id=result.comm_id, reference=result.reference, status=result.ok, message=result.summary)


def message_state(report: MessageReport) -> MessageState:
    message = report.message
    return MessageState(
        comm_id=message.comm_id, reference=report.reference, status=report.status, licensee_id=message.licensee_id,
        created_at=message.created_at, encoding=message.encoding, segments=message.segments,
        recipient_count=message.recipient_count,
        recipients=[
            RecipientState(
                id=r.recipient_id, phone_number=r.phone_number, name=r.name, contact_id=r.contact_id,
                status=r.status.value, provider_message_id=r.provider_message_id, error=r.last_error,
                attempts=r.attempts, updated_at=r.updated_at,
                timeline=[RecipientEvent(status=e.status.value, at=e.at, provider_message_id=e.provider_message_id,
                                         error=e.error, attempt=e.attempt) for e in r.timeline],
                timeline_omitted=r.events_omitted or None,
            )
            for r in report.recipients
        ],
        replies=None if report.replies is None else [ReplyState.of(r) for r in report.replies],
    )
