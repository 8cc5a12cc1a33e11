"""``map_httpx_errors``: httpx's exceptions become storykit's at a backend's edge."""

from __future__ import annotations

import httpx
import pytest

from storykit.errors import BackendError
from storykit_plugins._http import map_httpx_errors

REQUEST = httpx.Request("GET", "https://forge.example/api", headers={"Authorization": "secret"})


def _mapped(exc: Exception) -> BackendError:
    with (
        pytest.raises(BackendError) as caught,
        map_httpx_errors(
            timeout="the forge did not answer in time",
            unreachable=lambda error: f"could not reach the forge: {error}",
        ),
    ):
        raise exc
    return caught.value


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectTimeout("timed out", request=REQUEST),
        httpx.ReadTimeout("timed out", request=REQUEST),
        httpx.PoolTimeout("no connection free", request=REQUEST),
    ],
)
def test_a_timeout_gets_the_timeout_message(exc: Exception) -> None:
    assert _mapped(exc).detail == "the forge did not answer in time"


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (httpx.ConnectError("[Errno 111] refused", request=REQUEST), "ConnectError: [Errno 111]"),
        (httpx.RemoteProtocolError("peer closed", request=REQUEST), "RemoteProtocolError: peer"),
        (httpx.UnsupportedProtocol("no scheme", request=REQUEST), "UnsupportedProtocol: no"),
        (
            httpx.HTTPStatusError(
                "Server error '503'", request=REQUEST, response=httpx.Response(503)
            ),
            "HTTPStatusError: Server error '503'",
        ),
    ],
)
def test_any_other_httpx_error_says_what_failed(exc: Exception, error: str) -> None:
    assert _mapped(exc).detail.startswith(f"could not reach the forge: {error}")


def test_the_httpx_exception_is_not_chained() -> None:
    # Its request carries the token in its headers: it must not travel with the error.
    mapped = _mapped(httpx.ConnectError("refused", request=REQUEST))
    assert mapped.__cause__ is None
    assert mapped.__suppress_context__


def test_other_exceptions_pass_through() -> None:
    with (
        pytest.raises(KeyError),
        map_httpx_errors(timeout="t", unreachable=lambda error: error),
    ):
        raise KeyError("not an httpx error")
