"""Platform adapters (WeCom, DingTalk). Each one has the same shape:

- inbound: an aiohttp route (or stream) that verifies → decrypts → parses into a neutral
  `handlers.events` event, hands it to `bot.platforms.inbox.Inbox.accept` and answers the platform
  at once; the inbox worker later runs it through `handlers.chat.ChatService.process`;
- outbound: a `notifications.delivery.Delivery` that renders the neutral outbox payload as the
  platform's card or text and calls its API with cached tokens and retries.

Shared by both adapters: `message_crypto` (the callback signature and AES envelope),
`http_retry` (retries of outbound API calls, on tenacity) and `tokens` (the access-token cache).

Adapters translate; they never decide an approval rule.
"""
