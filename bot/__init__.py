"""oabot: approvals, field check-ins and deadline reminders in WeCom and DingTalk.

The `bot` package holds the edges of the service: settings, the aiohttp app factory,
the CLI, the REST API and the platform adapters. It decides nothing about approvals.
"""

__version__ = "0.1.0"
