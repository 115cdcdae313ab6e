"""CLI subcommands, one module each. Every module exposes `register(subparsers)`, which adds
its parser(s) and sets `func` (a callable taking the parsed args and returning an exit code)."""
