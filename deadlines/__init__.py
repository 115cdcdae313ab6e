"""Time: the working calendar, what is due when, and the durable timer table.

- `calendar`: which instants are working time (the official Chinese holiday schedule with its
  make-up working days 调休, the organisation's overrides, working hours, timezone) and
  arithmetic on working time. Pure: every instant comes in as an argument.
- `org_calendar`: the live calendar with the overrides stored in the database.
- `ladder`, `digest`, `leave`: pure plans of what is said and done over time (reminders 催办,
  supervision 督办, escalation, digests, a leave's delegation).
- `timers`: the one timer table that everything happening later is written to, and the claim
  that makes each row fire once across replicas.

Nothing here opens a transaction of its own for a use case or calls the approval engine:
`services.deadlines` loads, calls these, and stores what they return.
"""
