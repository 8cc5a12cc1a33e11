"""Web host tests run on asyncio (Quart's test client); streaming is tested on a real server."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
