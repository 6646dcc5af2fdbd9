"""The domain: the gateway's records and rules, with no I/O and no framework. What a message, a
recipient and a job are (model.py) and how a recipient's status may change (transitions.py); the
commands the use cases take (commands.py); the rules a send must meet (validation.py, phone.py,
segments.py, instants.py, quiet.py); a licensee's calendar days in its zone
(local_days.py); how fast and how often to try (pacing.py); webhook events as data
(events.py) and how they are signed, delivered and retried (webhook_signing.py, webhook_attempts.py,
webhook_backoff.py); where a webhook may point (destinations.py); and what can go wrong (errors.py).
The use cases (sms.usecases) build on it; it imports nothing of theirs."""
