"""The DTOs exactly as the seed's metadata page publishes them for Python clients (SMSSend-metadata.txt)."""
from marshmallow.fields import *
from servicestack import *
from typing import *
from dataclasses import dataclass, field
from dataclasses_json import dataclass_json, LetterCase, Undefined, config


@dataclass_json(letter_case=LetterCase.CAMEL, undefined=Undefined.EXCLUDE)
@dataclass
class CommResponse:
    comm_id: Optional[str] = None
    reference: Optional[str] = None
    status: bool = False
    message: Optional[str] = None


@dataclass_json(letter_case=LetterCase.CAMEL, undefined=Undefined.EXCLUDE)
@dataclass
class BaseLicenseeEnforcedServiceModel:
    licensee_id: Optional[str] = None


@dataclass_json(letter_case=LetterCase.CAMEL, undefined=Undefined.EXCLUDE)
@dataclass
class SMSContact:
    name: Optional[str] = None
    phone_number: Optional[str] = None
    contact_id: Optional[str] = None


@dataclass_json(letter_case=LetterCase.CAMEL, undefined=Undefined.EXCLUDE)
@dataclass
class SMSModel(BaseLicenseeEnforcedServiceModel):
    from_: Optional[SMSContact] = field(metadata=config(field_name='from'), default=None)
    to: Optional[List[SMSContact]] = None
    message_body: Optional[str] = None
    reply_is_allowed: bool = False
    reply_is_required: bool = False
    notes: Optional[str] = None
    linked_object_id: Optional[str] = None
    suite_id: Optional[str] = None


# @Api(Description="Saves the specified SMS and sends it for background processing")
@dataclass_json(letter_case=LetterCase.CAMEL, undefined=Undefined.EXCLUDE)
@dataclass
class SMSSend:
    """
    Saves the specified SMS and sends it for background processing
    """

    sms_model: Optional[SMSModel] = None
    create_communication_references_immediately: bool = False
