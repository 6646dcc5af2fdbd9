"""The gateway's use cases, one job a module. They know nothing of HTTP, the ServiceStack wire format
or Azure: they take commands (sms.domain.commands), work through the ports (sms.storage, sms.providers)
and answer with plain records. Entry points (sms.entrypoints) map to and from them; sms.gateway wires
them to adapters.

- accept.py             accept a send: check it, save it, queue its jobs (the commit point)
- send_now.py           send one within the request, through accept's commit point and dispatch
- idempotency.py        run a send once per Idempotency-Key, and answer a retry as the first was answered
- dispatch.py           send a job's recipients: claim, call the provider, record; settle what a crash left;
                        give up on a parked job
- job_rows.py           every change one dispatch makes to its job's rows, batched into few writes
- sweep.py              re-queue what was left behind
- status.py             where a message stands (the read model)
- inbound.py            what comes back: delivery receipts, replies, STOP / START
- optouts.py            opt-outs as dispatch reads them (per number, cached) and inbound changes them
- ledger.py             the message ledger: list and search a licensee's messages
- usage.py              daily usage: what each licensee sent per day, rolled up from the ledger
- retention.py          delete what is older than SMS_RETENTION_DAYS
- cancel.py             cancel what of a message has not gone
- licensees.py, held.py a licensee's quiet hours and time zone; waking what they held when they change
- webhook_endpoints.py  a licensee's webhook endpoints: add (what may be saved), list, rotate a secret, remove
- announce.py, delivery.py   queue an event's delivery before its write; send, log and replay deliveries
- auth.py               API keys: issue, rotate, check (cached)
- optimistic.py         the read -> change -> ETag-checked write loop every conditional update uses
- paging.py             continuation tokens bound to the query they go on with
"""
