"""Local tooling, never deployed (.funcignore leaves it out of the package): the dev host that stands in
for the Functions host (host/), what `make run` runs (localrun.py), a throwaway Azurite (azurite.py,
children.py), NCRONTAB schedules for the dev host's timers (ncrontab.py), what ACS would post
(simulate.py, for `python -m sms simulate`) and a webhook receiver to watch events arrive (listen.py)."""
