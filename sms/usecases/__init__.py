"""The gateway's use cases, one job a module. They know nothing of HTTP, the ServiceStack wire format
or Azure: they take commands (commands.py), work through the ports (sms.storage, sms.providers) and
answer with plain records. Entry points (sms.api, sms.callbacks, sms.worker, sms.cli) map to and
from them; sms.gateway wires them to adapters.

- accept.py       accept a send: check it, save it, queue its jobs (or send it now)
- idempotency.py  run a send once per Idempotency-Key, and answer a retry as the first was answered
- dispatch.py     send a job's recipients: claim, call the provider, record; give up on a parked job
- job_rows.py     every change one dispatch makes to its job's rows, batched into few writes
- sweep.py        re-queue what was left behind
- status.py       where a message stands (the read model)
- inbound.py      what comes back: delivery receipts, replies, STOP / START
- ledger.py       the message ledger: list and search a licensee's messages, daily usage
- retention.py    delete what is older than SMS_RETENTION_DAYS
- webhooks.py     a licensee's webhook endpoints: add (what may be saved), list, rotate a secret, remove, enable
- optimistic.py   the read -> change -> ETag-checked write loop every conditional update uses
- paging.py       continuation tokens bound to the query they go on with
"""
