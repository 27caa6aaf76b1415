"""Root pytest configuration.

Tests are imported in importlib mode under names derived from their path (`contracts.tests...`);
importing the real top-level packages first keeps those names from shadowing them.
"""

import contracts  # noqa: F401
import gateway  # noqa: F401
