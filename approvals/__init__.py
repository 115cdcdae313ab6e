"""The approval core: templates, forms, routing, the engine and its transition table, the trail.

`definitions`/`template_loader` describe templates, `forms` validates what is submitted,
`routing` plans who approves, `engine` applies submissions, actions and the system's own
decisions and notes (changing statuses only through `transitions`), and `trail` seals and
verifies the hash-chained trail. It returns codes and parameters, not wording (that is
`notifications`), and it is the only writer of approval state.

Pure Python. It must not import aiohttp, SQLAlchemy/SQLModel, redis, httpx, APScheduler or
any platform SDK, and it never reads the wall clock: `now` comes in as an argument.
"""
