"""The send path's two storage requests written by hand, and their own transport.

Every accepted message costs one entity-group transaction and one job put. Written by the SDKs, they
cost more CPU than the rest of accepting it (docs/scaling.md), so the gateway writes them itself and,
by default, sends them over its own aiohttp session (SMS_STORAGE_REQUESTS=lean); =direct sends the same
requests through the SDK clients' pipelines. sms/storage/requests.py is the one interface the adapters
call, whichever way is chosen.

  sending.py        the two ways these requests go out: lean (transport.py) and direct (the SDK pipelines)
  batch_request.py  a transaction's $batch request (odata.py: an entity's JSON)
  batch_answer.py   reading the $batch answer: each operation's ETag, or the refusal
  job_put.py        a send job's Put Message request
  transport.py      one aiohttp session per process: headers, retries, timeouts, errors as the SDK's
  signing.py        SharedKey (Queue, Table), SAS, Entra ID tokens
  retries.py        the SDK pipelines' retry rules, as sms/bootstrap.py configures them
"""
