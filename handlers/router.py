"""A small router: handlers register per module, routers are included in one place.

Each handler is `async def handler(event, deps: ChatDeps) -> str | None`; a returned string is the
reply, sent to the sender through the outbox like any other message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from handlers.deps import ChatDeps
from handlers.events import CardAction, EnterChat, Event, LocationShared, TextMessage

# The event parameter is the route's own event type (a TextMessage for `text()`, ...).
Handler = Callable[[Any, ChatDeps], Awaitable[str | None]]


@dataclass
class _Route:
    event_type: type
    handler: Handler
    command: str | None = None  # text messages: the first word
    actions: frozenset[str] | None = None  # card taps: the buttons it takes (None: any other)


@dataclass
class Router:
    name: str
    routes: list[_Route] = field(default_factory=list)
    children: list[Router] = field(default_factory=list)

    def include(self, *routers: Router) -> None:
        self.children.extend(routers)

    def card_action(self, actions: Collection[str] | None = None) -> Callable[[Handler], Handler]:
        """`actions` names the buttons this handler takes; None is the fallback for any other."""
        return self._register(CardAction, actions=frozenset(actions) if actions is not None else None)

    def location(self) -> Callable[[Handler], Handler]:
        return self._register(LocationShared)

    def enter_chat(self) -> Callable[[Handler], Handler]:
        return self._register(EnterChat)

    def text(self, command: str | None = None) -> Callable[[Handler], Handler]:
        """`command` matches the first word; None is the fallback for any other text."""
        return self._register(TextMessage, command)

    def _register(
        self, event_type: type, command: str | None = None, actions: frozenset[str] | None = None
    ) -> Callable[[Handler], Handler]:
        def deco(func: Handler) -> Handler:
            self.routes.append(_Route(event_type, func, command, actions))
            return func

        return deco

    def _all(self) -> list[_Route]:
        out = list(self.routes)
        for child in self.children:
            out.extend(child._all())
        return out

    def commands(self) -> list[str]:
        return [r.command for r in self._all() if r.command]

    def resolve(self, event: Event) -> Handler | None:
        routes = [r for r in self._all() if isinstance(event, r.event_type)]
        if isinstance(event, TextMessage):
            word = event.text.strip().split(maxsplit=1)[0] if event.text.strip() else ""
            exact = next((r for r in routes if r.command == word), None)
            if exact:
                return exact.handler
            fallback = next((r for r in routes if r.command is None), None)
            return fallback.handler if fallback else None
        if isinstance(event, CardAction):
            named = next((r for r in routes if r.actions is not None and event.action in r.actions), None)
            routes = [named] if named else [r for r in routes if r.actions is None]
        return routes[0].handler if routes else None
