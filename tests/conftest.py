"""Test configuration: each area's fixtures live in tests/fixtures/<area>.py."""

from pathlib import Path

from hypothesis import settings

pytest_plugins = sorted(
    f"tests.fixtures.{path.stem}"
    for path in (Path(__file__).parent / "fixtures").glob("*.py")
    if path.stem != "__init__"
)

# Hypothesis' per-example deadline is a timing assertion: on a shared 2-core machine it
# fails for load, not for a bug. Tests never assert on timings.
settings.register_profile("wanotify", deadline=None)
settings.load_profile("wanotify")
