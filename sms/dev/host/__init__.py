"""A small local stand-in for the Azure Functions host, for machines without Core Tools.

It serves the FunctionApp's own registered functions: HTTP routes and methods come from
`app.get_functions()` and the route prefix from host.json, so there is no second route table to
drift. Requests are routed as the Azure host routes them (routing.py), answers go out with the headers the
Python worker and the host give them (responses.py), queue triggers run with the
Storage Queues extension's polling and poison rules (queues.py), timers on their NCRONTAB
schedules (timers.py). docs/devhost.md lists where it differs from the real host, and why.

    python -m sms.dev.host --host 127.0.0.1 --port 7071
"""
from .host import load_app, serve, spawned

__all__ = ["load_app", "serve", "spawned"]
