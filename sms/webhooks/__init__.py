"""Outbound webhooks, the adapter side: the HTTP sender with its destination guard (sender.py), the
transport the delivery use case sends through. What to send, how it is signed and when to try again are
the domain's (sms.domain.events, webhook_signing, webhook_backoff); listen.py only keeps README's
`python -m sms.webhooks.listen` working (the receiver is local tooling, in sms/dev/)."""
