"""The application layer: one module per use-case family.

A service opens the transactions, loads what the pure core needs, calls it, and stores what it
returns (state, trail, outbox rows, timers) in one go. REST, pages and chat handlers call
services; they never reach into `storage/` themselves.
"""
