"""`python -m shopkit.kafka_admin ping|ensure-topics`: used by the local stack scripts."""

from __future__ import annotations

import argparse
import asyncio
import sys

from contracts import topics
from shopkit.kafka import ensure_topics, ping


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m shopkit.kafka_admin")
    parser.add_argument("command", choices=["ping", "ensure-topics"])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    args = parser.parse_args()
    if args.command == "ping":
        return 0 if asyncio.run(ping(args.bootstrap)) else 1
    created = asyncio.run(ensure_topics(args.bootstrap, topics.ALL))
    if created:
        print(f"created topics: {', '.join(created)} ({topics.PARTITIONS} partitions each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
