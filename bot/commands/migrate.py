"""Placeholder: the `migrate` command is being written."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    _ = argparse
