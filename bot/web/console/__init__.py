"""The console: the embedded default's chat, a browser page that plays each user's phone.

Server-rendered HTML with a little JavaScript and no build step. Taps, texts and locations
become the same neutral events a real platform adapter produces, and everything the user sees
arrives through the same outbox; nothing goes around them.
"""
