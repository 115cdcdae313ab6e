"""Chat only: turn one platform-neutral chat event into one service call and a reply.

Handlers see `handlers.events` types and the typed `handlers.deps.ChatDeps`; they never import a
platform module or storage, and decide no approval rule. Adding a command or a card action is one
decorated `async def` on a module's router (`handlers.router`), included in `handlers.chat`.
"""
