"""Reports on the office's work: statistics for appraisals and backups of the database.

`reports.stats` is pure (no I/O, no wall clock): plain facts in, numbers and summary texts out.
`reports.backup` copies and restores database files (SQLite's online backup, pg_dump) and holds
the lock that tells a restore the service is running; it knows nothing of approvals.
`reports.stats_queries` reads the facts from the approval tables. The report service, the
weekly summary and the scheduled backups (timer kinds) are in `services.stats` and
`services.backups`; the command line and the API in `bot.cli.stats`, `bot.cli.backup` and
`bot.web.api_stats`.
"""
