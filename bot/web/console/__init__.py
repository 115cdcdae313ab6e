"""The console: the embedded default's chat, a browser page that plays each user's phone.

Server-rendered pages (Jinja2 templates in `bot/web/templates/console/`, autoescaped) with a
little JavaScript and no build step; the stylesheet and script are files in `bot/web/static/`.
Taps, texts and locations become the same neutral events a real platform adapter produces, and
everything the user sees arrives through the same outbox; nothing goes around them.
"""
