"""Fixtures of the seed-interface tests: the sandbox with its templates synced."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from core.notify import sync_templates_now
from core.sandbox import SandboxServer
from tests.fixtures.consent import allow_unrecorded


@pytest.fixture
def synced(sandbox_env: SandboxServer, engine: Engine) -> SandboxServer:
    """The sandbox, with its templates copied into the registry of tenant `default`,
    which sends without recorded consent (consent itself: tests/core/test_consent*)."""
    assert sync_templates_now("default", engine=engine).added > 0
    allow_unrecorded(engine, "default")
    return sandbox_env
