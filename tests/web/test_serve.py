"""``storykit serve``: port conflicts, the generated key, the state file, the HTTP edge."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h11
import httpx
import pytest
from realserver import (
    ADMIN_KEY,
    AGENT_KEY,
    OTHER_KEY,
    REVIEWER_KEY,
    Server,
    free_port,
    running_server,
    serve_command,
    wait_healthy,
)
from test_api import NOT_JSON_TEXT


def serve(tmp_path: Path, port: int, **env: str) -> subprocess.Popen[str]:
    if not (tmp_path / ".git").exists():
        subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)  # serve checks REPO_PATH
    return serve_command(tmp_path, tmp_path / "d", port, log=tmp_path / "log", env=env)


def test_a_taken_port_is_named_with_a_free_one(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = serve(tmp_path, port)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use; use --port" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_without_api_tokens_a_key_is_made_once_kept_private_and_works(tmp_path: Path) -> None:
    port = free_port()
    proc = serve(tmp_path, port)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", None)
        key_file = tmp_path / "d" / "api-key"
        key = key_file.read_text().strip()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        state = json.loads((tmp_path / "d" / "server.json").read_text())
        assert state == {
            "pid": proc.pid,
            "host": "127.0.0.1",
            "port": port,
            "url": f"http://127.0.0.1:{port}",
        }
        assert (
            httpx.get(f"http://127.0.0.1:{port}/plugins", headers={"X-API-Key": key}).status_code
            == 200
        )
        assert (
            httpx.get(
                f"http://127.0.0.1:{port}/plugins", headers={"X-API-Key": "x" * 10}
            ).status_code
            == 401
        )
    finally:
        proc.terminate()
        first_out, _ = proc.communicate(timeout=30)
    assert key in first_out
    assert "dashboard: http://localhost:" in first_out
    assert not (tmp_path / "d" / "server.json").exists()
    assert key not in (tmp_path / "log").read_text()

    proc = serve(tmp_path, port)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", None)
    finally:
        proc.terminate()
        second_out, _ = proc.communicate(timeout=30)
    assert key not in second_out  # printed once, when it was made
    assert "using the keys kept in" in second_out


# -- the HTTP edge on a real server --------------------------------------------------------


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def small_bodies(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with running_server(
        tmp_path_factory.mktemp("edge"), worker=request.param, env={"MAX_BODY_BYTES": "2048"}
    ) as server:
        yield server


def _send(conn: h11.Connection, sock: socket.socket, *events: Any) -> None:
    for event in events:
        sock.sendall(conn.send(event) or b"")


def _response(conn: h11.Connection, sock: socket.socket) -> h11.Response:
    """Read one whole response (its head, its data, its end) and return the head."""
    got: list[Any] = []
    while not got or not isinstance(got[-1], h11.EndOfMessage):
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = sock.recv(65536)
            assert data, "the server closed the connection mid-response"
            conn.receive_data(data)
        else:
            got.append(event)
    assert isinstance(got[0], h11.Response)
    return got[0]


EARLY_REFUSALS = [
    ("POST", "/suggestions", {}, 401),
    ("POST", "/suggest/review", {"X-API-Key": AGENT_KEY}, 403),
    ("POST", "/suggestions", {"X-API-Key": AGENT_KEY}, 413),
    ("GET", "/events", {"X-API-Key": "not-a-key"}, 401),
]


@pytest.mark.parametrize(("method", "path", "headers", "status"), EARLY_REFUSALS)
def test_a_refusal_before_the_body_is_read_leaves_keep_alive_working(
    small_bodies: Server, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    """The refusal comes before the client has sent its body. Either the server says
    ``Connection: close`` (the client then opens a new connection), or the connection
    takes the rest of the body and a next request. Never a silent close."""
    body = b'{"title": "t", "diff": "' + b"x" * (4000 if status == 413 else 100) + b'"}'
    conn = h11.Connection(h11.CLIENT)
    with socket.create_connection(("127.0.0.1", small_bodies.port), timeout=10) as sock:
        head = [("Host", "127.0.0.1"), ("Content-Type", "application/json")]
        head += [*headers.items(), ("Content-Length", str(len(body)))]
        _send(conn, sock, h11.Request(method=method, target=path, headers=head))
        response = _response(conn, sock)
        assert response.status_code == status
        assert dict(response.headers)[b"content-type"] == b"application/problem+json"
        if (b"connection", b"close") in [(k, v.lower()) for k, v in response.headers]:
            return
        _send(conn, sock, h11.Data(data=body), h11.EndOfMessage())
        conn.start_next_cycle()
        _send(conn, sock, h11.Request(method="GET", target="/health", headers=head[:1]))
        assert _response(conn, sock).status_code == 200


def test_the_real_router_never_redirects(small_bodies: Server) -> None:
    r = httpx.get(
        f"{small_bodies.url}/story/static/v/%2Fetc%2Fpasswd", headers={"Host": "evil.example"}
    )
    assert r.status_code == 404 and "location" not in r.headers
    assert r.headers["content-type"] == "application/problem+json"


def test_a_refusal_after_the_body_keeps_the_connection(small_bodies: Server) -> None:
    with httpx.Client(base_url=small_bodies.url, timeout=10) as client:
        for _ in range(3):
            r = client.post("/suggestions", json={"title": "t"}, headers={"X-API-Key": AGENT_KEY})
            assert r.status_code == 422 and r.headers.get("connection") != "close"


@pytest.mark.parametrize("worker", ["asyncio", "trio"])
def test_bodies_that_are_not_json_text_get_400_on_the_real_server(
    tmp_path: Path, worker: str
) -> None:
    json_type = {"Content-Type": "application/json", "X-API-Key": AGENT_KEY}
    with (
        running_server(tmp_path, worker=worker) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        for name, headers, data, says in NOT_JSON_TEXT:
            r = client.post("/suggestions", content=data, headers=json_type | headers)
            assert r.status_code == 400, (name, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert says in r.json()["detail"], name
        assert client.get("/suggestions", headers=json_type).json()["items"] == []


BROKEN_SOURCE = '''
from storykit.hookspecs import hookimpl


class Broken:
    """A source with a bug: it returns None where storykit expects a list of drafts."""

    name = "broken"

    async def generate(self, request):
        return None


@hookimpl
def storykit_register_sources(register, settings):
    register(Broken())
'''


def _broken_plugin(where: Path) -> Path:
    """An installed-looking plugin (a ``.dist-info`` with its entry point) on a path of its own,
    so the real server loads it like any other: the test's way to cause a 500."""
    where.mkdir()
    (where / "storykit_broken_source.py").write_text(BROKEN_SOURCE)
    dist = where / "storykit_broken_source-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: storykit-broken-source\nVersion: 0.1\n"
    )
    (dist / "entry_points.txt").write_text("[storykit]\nbroken = storykit_broken_source\n")
    return where


def test_no_key_or_ticket_reaches_any_file_the_server_writes(tmp_path: Path) -> None:
    plugins = _broken_plugin(tmp_path / "plugins")
    env = {"PYTHONPATH": str(plugins), "STORYKIT_LOAD_PLUGINS": "broken", "LOG_LEVEL": "DEBUG"}
    secrets = [AGENT_KEY, REVIEWER_KEY, OTHER_KEY, ADMIN_KEY, "wrong-key-0123456789"]
    with (
        running_server(tmp_path, env=env) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        agent, reviewer = {"X-API-Key": AGENT_KEY}, {"X-API-Key": REVIEWER_KEY}
        tickets = [client.post("/events/ticket", headers=agent).json()["ticket"] for _ in range(3)]
        secrets += tickets
        hostile = [
            client.get("/plugins", headers={"X-API-Key": "wrong-key-0123456789"}),
            client.get("/plugins", params={"key": ADMIN_KEY}, headers=agent),
            client.get("/suggestions", params={"key": OTHER_KEY}, headers=agent),
            client.get("/nope", params={"ticket": tickets[0], "key": OTHER_KEY}),
            client.post(
                "/suggestions",
                content=f'{{"title": "{ADMIN_KEY}", "diff": '.encode(),
                headers=agent | {"Content-Type": "application/json"},
            ),
            client.post("/suggestions", json={"key": ADMIN_KEY, "diff": "x"}, headers=agent),
            client.post("/policies/check", json={"diff": OTHER_KEY}, headers=agent),
            client.put("/policies", json={ADMIN_KEY: {}}, headers={"X-API-Key": ADMIN_KEY}),
            client.get("/events", params={"key": "wrong-key-0123456789"}),
            client.get("/events", params={"ticket": "tk_" + ADMIN_KEY}),
        ]
        assert all(r.status_code < 500 for r in hostile), [r.status_code for r in hostile]
        with client.stream("GET", "/events", params={"ticket": tickets[1]}) as stream:
            assert stream.status_code == 200
        assert client.get("/events", params={"ticket": tickets[1]}).status_code == 401  # used
        # A bug while a request carries keys in its URL, its headers and its body.
        crash = client.post(
            "/suggest/generate",
            params={"key": REVIEWER_KEY, "ticket": tickets[2]},
            json={"sources": ["broken"], "paths": [ADMIN_KEY]},
            headers=reviewer | {"Authorization": f"Bearer {OTHER_KEY}"},
        )
        assert crash.status_code == 500, crash.text
        assert crash.headers["content-type"] == "application/problem+json"
    log = server.log_file.read_text()
    assert '"unhandled error"' in log and "TypeError" in log  # the bug was logged, with its trace
    written = [server.log_file, *(p for p in server.data_dir.rglob("*") if p.is_file())]
    for path in written:
        content = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in content, f"{secret!r} is in {path}"


def refused(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """What a server that must not start printed; it is killed if it started anyway."""
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("the server started") from None
    assert proc.returncode != 0
    return out, err


def test_a_plugin_name_nothing_installed_has_stops_the_server_with_one_line(
    tmp_path: Path,
) -> None:
    out, err = refused(serve(tmp_path, free_port(), STORYKIT_LOAD_PLUGINS="todo-fixer,no-pint"))
    [line] = err.strip().splitlines()
    assert line.startswith("error: STORYKIT_LOAD_PLUGINS: no installed plugin is called")
    assert "'no-pint'" in line and "'todo-fixer'" in line and "dry-run" in line
    assert "dashboard" not in out


def test_a_malformed_api_tokens_entry_stops_the_server_and_never_shows_the_key(
    tmp_path: Path,
) -> None:
    key = "sk_Qm4Jt8Wz2Lx6Hc0Vb3Np"
    out, err = refused(serve(tmp_path, free_port(), API_TOKENS=f"alice=reviewer:{key}"))
    [line] = err.strip().splitlines()
    assert line.startswith("error: API_TOKENS: entry 1 ")
    assert key[3:] not in out + err
    assert "dashboard" not in out
