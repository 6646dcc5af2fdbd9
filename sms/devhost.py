"""`python -m sms.devhost`, as README says: the dev host, which lives with the local tooling in sms/dev/host/."""
from sms.dev.host.host import main

if __name__ == "__main__":
    main()
