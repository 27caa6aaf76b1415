"""Root pytest configuration.

Tests are imported in importlib mode under names derived from their path (`contracts.tests...`);
importing the real top-level packages first keeps those names from shadowing them.
"""

import contracts  # noqa: F401
import gateway  # noqa: F401


def pytest_sessionstart(session: object) -> None:
    """Drop what killed test runs left behind: Kafka topics older than half an hour (they slow
    the broker) and test databases older than six hours."""
    import asyncio

    from shopkit.testing import delete_stale_test_databases, delete_stale_test_topics

    try:
        asyncio.run(delete_stale_test_topics())
    except Exception as exc:  # the stack may not be up for a contracts-only run
        print(f"stale test topics not cleaned: {exc!r}")
    try:
        asyncio.run(delete_stale_test_databases())
    except Exception as exc:
        print(f"stale test databases not cleaned: {exc!r}")
