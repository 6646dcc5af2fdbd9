"""The entry points: what the Functions host and an operator call. The route table (routes.py) and the
HTTP blueprints over it (api.py for clients, callbacks.py for the SMS vendors), the queue and timer
blueprint (worker.py), the generated documents (openapi.py, metadata.py) and the operators' command
line (cli.py). Each maps its input to a use case's command (through sms.wire for the ServiceStack
contract) and the answer back; none holds a rule of its own."""
