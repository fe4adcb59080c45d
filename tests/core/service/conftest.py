"""Fixtures of the seed-interface tests: the sandbox with its templates synced."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from core.notify import sync_templates_now
from core.sandbox import SandboxServer


@pytest.fixture
def synced(sandbox_env: SandboxServer, engine: Engine) -> SandboxServer:
    """The sandbox, with its templates copied into the registry of tenant `default`."""
    assert sync_templates_now("default", engine=engine).added > 0
    return sandbox_env
