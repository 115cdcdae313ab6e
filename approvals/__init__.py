"""The approval core: templates, forms, routing, actions, delegation and the trail.

Pure Python. It must not import aiohttp, SQLAlchemy/SQLModel, redis, httpx, APScheduler or
any platform SDK, and it never reads the wall clock: `now` comes in as an argument.
"""
