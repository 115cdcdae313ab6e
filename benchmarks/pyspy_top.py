"""Summarise a py-spy raw profile (`py-spy record -f raw`, as `benchmarks/intake.py --profile`
writes): the share of samples spent in (inclusive) and directly in (self) each function.

    python benchmarks/pyspy_top.py /tmp/prof/pg_all.txt [--top 30] [--match oabot-path-part]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def short(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    file = m["file"]
    for marker in ("site-packages/", "/lib/python3.11/", "p7-perf/", "/work/main/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{m['func']} ({file})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--match", default="", help="only count frames whose text contains this")
    args = parser.parse_args()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for raw in Path(args.profile).read_text().splitlines():
        stack, _, count_text = raw.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        n = int(count_text)
        total += n
        frames = [short(f) for f in stack.split(";")]
        for f in set(frames):
            inclusive[f] += n
        if frames:
            own[frames[-1]] += n
    print(f"{total} samples")
    print("inclusive:")
    for f, n in inclusive.most_common():
        if args.match in f:
            print(f"  {100 * n / total:5.1f}%  {f}")
            args.top -= 1
            if args.top <= 0:
                break
    print("self (top 15):")
    for f, n in own.most_common(15):
        print(f"  {100 * n / total:5.1f}%  {f}")


if __name__ == "__main__":
    main()
