"""Cron expressions, Quartz and Unix, evaluated on the wall clock of an IANA time zone.

The package holds one engine in seams: `fields` (one field), `parse` (a whole expression and
`CronExpr`), `days` (day rules per month), `zones` (wall clock and DST), `iterate` (the search
for the next occurrence), `english` (descriptions) and `schedule` (the `cron` schedule kind,
registered on import). docs/cron.md describes the behaviour.
"""

from cronwheel.domain.cron.days import DaySpec, Rule
from cronwheel.domain.cron.english import describe
from cronwheel.domain.cron.fields import FIELD, MAX_YEAR, MIN_YEAR
from cronwheel.domain.cron.parse import CronExpr, CronSyntax, Dialect
from cronwheel.domain.cron.schedule import CronSchedule, parse_cron_schedule

__all__ = [
    "FIELD",
    "MAX_YEAR",
    "MIN_YEAR",
    "CronExpr",
    "CronSchedule",
    "CronSyntax",
    "DaySpec",
    "Dialect",
    "Rule",
    "describe",
    "parse_cron_schedule",
]
