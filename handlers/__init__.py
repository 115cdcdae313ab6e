"""Turn platform-neutral chat events into one workflow call each.

Handlers see only `handlers.events` types; no handler imports a platform module. Adding a
command or a card action is one decorated `async def` on a module's router.
"""
