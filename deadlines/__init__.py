"""Time limits and everything that happens later.

Pure (no I/O, never the wall clock: every instant comes in as an argument):
`deadlines.calendar` says which instants are working time in the organisation (the official
Chinese holiday schedule with its make-up working days 调休, the organisation's own overrides,
its working hours and timezone) and does arithmetic on working time; `deadlines.ladder`,
`deadlines.digest`, `deadlines.leave` and `deadlines.slots` decide the reminders 催办,
supervision 督办, digests, leave delegations and the slots of recurring timers.

With the database: `deadlines.timers` writes, cancels and claims the rows of the one timer
table; `deadlines.timer_kinds` is the registry of timer kinds (one handler each, registered by
the services) and the one scan that fires them; `deadlines.org_calendar` keeps the calendar's
overrides fresh. What a timer does is the services' business, not this package's.
"""
