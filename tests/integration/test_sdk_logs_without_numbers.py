"""The Azure SDK's own request log, against real Azurite: azure-core's HttpLoggingPolicy logs every
request's URL at INFO, and an inbound SMS's storage requests name the sender's number in theirs (the
reply-route and opt-out keys are phone numbers). On Azure the Python worker forwards those records to
the host's logs. Issue 12, item 12: no log line may carry a full number.

The fix belongs in sms/bootstrap.py (where the clients are built), which is not this test's author's
to edit: the patch is in the issue-12 report. Strict, so applying it means removing this marker.
"""
import logging

import pytest

from sms.bootstrap import build
from sms.config import Settings
from sms.domain.model import utcnow
from sms.storage import InboundSms
from tests.unit.test_no_server_errors import leaked

NUMBER = "+61412345999"


@pytest.fixture
def sdk_log_levels_unset():
    """The levels as a fresh worker process has them (the dev host and `make run` quiet "azure" for
    their own console), restored afterwards."""
    loggers = [logging.getLogger(name) for name in ("azure", "azure.core.pipeline.policies.http_logging_policy")]
    saved = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.NOTSET)
    yield
    for logger, level in zip(loggers, saved, strict=True):
        logger.setLevel(level)


async def test_an_inbound_stop_leaves_no_full_number_in_any_log_record(emulator, caplog, sdk_log_levels_unset):
    gateway = build(Settings.from_env({"AzureWebJobsStorage": emulator.connection_string}))
    try:
        await gateway.ensure_storage()
        caplog.set_level(logging.INFO)  # the worker's level for the host's "Function" category (host.json)
        await gateway.gateway().use.inbound.receive(InboundSms(NUMBER, "+61400000000", "STOP", utcnow(), "acs", "in-logs-1"))
    finally:
        await gateway.close()
    assert any(r.name.startswith("sms.") for r in caplog.records)  # the STOP itself is logged, masked
    assert [r.getMessage()[:200] for r in caplog.records if leaked(r.getMessage())] == []
