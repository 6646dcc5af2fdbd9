"""`python -m sms.webhooks.listen`, as README says: the local webhook receiver, which lives with the local
tooling in sms/dev/listen.py."""
from sms.dev.listen import main

if __name__ == "__main__":
    main()
