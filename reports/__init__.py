"""Reports on the office's work: statistics for appraisals and backups of the database.

`reports.stats` is pure (no I/O, no wall clock): plain facts in, numbers and summary texts out.
`reports.backup` copies and restores database files (SQLite's online backup, pg_dump) and holds
the lock that tells a restore the service is running; it knows nothing of approvals.
Storage queries live in `storage.stats_queries`; the command line, the API and the scheduled
jobs in `bot.cli.stats`, `bot.cli.backup` and `bot.web.api_stats`.
"""
