"""Pure domain values and rules: no I/O, no framework, no event loop."""

# Importing the schedule kinds registers them with domain.schedules.
from cronwheel.domain import cron as cron
from cronwheel.domain import intervals as intervals
from cronwheel.domain import union as union
