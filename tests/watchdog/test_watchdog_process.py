"""The watchdog against real child processes. Nothing here sleeps to synchronise: every
wait polls a condition with a generous deadline, and no assertion depends on how fast
the machine is (delays are checked as the values the watchdog logged, not measured)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from watchdog_helpers import Watchdog, child_script, process_gone, watchdog_cli

from storykit.testing import wait_until

Start = Callable[..., Watchdog]

SLEEPER = [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(600)"]
FAST = ["--backoff-initial", "0.05", "--kill-timeout", "5"]


def test_crashing_child_backs_off_exponentially_resets_when_stable_and_gives_up(
    watchdogs: Start, tmp_path: Path
) -> None:
    # Runs 1-3 and 5 crash at once; run 4 stays up past --stable-after, then crashes.
    counter = tmp_path / "runs"
    script = (
        'n=$(cat "$1" 2>/dev/null || echo 0); n=$((n+1)); echo "$n" > "$1"; '
        '[ "$n" -eq 4 ] && sleep 2; exit 1'
    )
    wd = watchdogs(
        "--no-probe",
        "--backoff-initial", "0.05",
        "--backoff-factor", "2",
        "--stable-after", "1",
        "--max-failures", "5",
        "--failure-window", "600",
        command=["sh", "-c", script, "sh", str(counter)],
    )  # fmt: skip
    assert wd.wait_exit() == 1  # gave up after the fifth failure
    assert counter.read_text().strip() == "5"
    delays = [e["delay"] for e in wd.events("child.backoff")]
    assert len(delays) == 4
    assert 0.045 <= delays[0] < delays[1] < delays[2]  # grows while it keeps crashing
    assert delays[2] == pytest.approx(0.2, rel=0.11)
    assert delays[3] == pytest.approx(0.05, rel=0.11)  # reset by the stable run
    order = [e["event"] for e in wd.events() if e["event"] in ("child.stable", "child.backoff")]
    assert order == ["child.backoff"] * 3 + ["child.stable", "child.backoff"]
    assert wd.events("watchdog.gave_up")
    status = wd.status()
    assert status["state"] == "failed"
    assert status["restarts"] == 4
    assert status["last_exit"]["reason"] == "crashed"
    assert status["last_exit"]["code"] == 1


def test_unhealthy_child_is_restarted(watchdogs: Start, tmp_path: Path, free_port: int) -> None:
    hang = tmp_path / "hang"
    wd = watchdogs(
        *FAST,
        "--probe-interval", "0.2",
        "--probe-timeout", "0.5",
        "--probe-failures", "2",
        "--grace", "30",  # a successful probe ends it early, so failures count at once
        command=child_script(
            "health_server.py", "--host", "127.0.0.1", "--port", str(free_port),
            "--hang-file", str(hang),
        ),
    )  # fmt: skip
    first = wd.wait_state("running")
    assert first["port"] == free_port
    assert first["url"] == f"http://127.0.0.1:{free_port}"
    hang.touch()
    wait_until(
        lambda: (wd.status().get("last_exit") or {}).get("reason") == "unhealthy",
        what="a restart for failed probes",
    )
    hang.unlink()
    second = wd.wait_state("running", restarts=1)
    assert second["pid"] != first["pid"]
    assert process_gone(first["pid"])
    failed = wd.events("probe.failed")
    assert [e["consecutive"] for e in failed[:2]] == [1, 2]


def test_port_from_the_servers_state_file(watchdogs: Start) -> None:
    wd = watchdogs(*FAST, "--probe-interval", "0.2", command=child_script("health_server.py"))
    status = wd.wait_state("running")
    assert status["port"]
    assert status["url"] == f"http://127.0.0.1:{status['port']}"
    wd.stop_file()
    assert wd.wait_exit() == 0


def test_child_that_ignores_sigterm_is_killed_after_the_timeout(watchdogs: Start) -> None:
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(600)"
    )
    wd = watchdogs(
        "--no-probe", "--kill-timeout", "0.5", command=[sys.executable, "-c", stubborn]
    )  # fmt: skip
    status = wd.wait_state("running")
    wd.wait_log("ready")  # SIGTERM is ignored from here on
    wd.stop_file()
    assert wd.wait_exit() == 0
    final = wd.status()
    assert final["state"] == "stopped"
    assert final["last_exit"]["reason"] == "stopped"
    assert final["last_exit"]["signal"] == signal.SIGKILL
    assert wd.events("child.killed")
    assert process_gone(status["pid"])


def test_stop_file_stops_child_and_watchdog(watchdogs: Start) -> None:
    wd = watchdogs("--no-probe", command=SLEEPER)
    pid = wd.wait_state("running")["pid"]
    wd.stop_file()
    assert wd.wait_exit() == 0
    status = wd.status()
    assert status["state"] == "stopped"
    assert status["pid"] is None
    assert status["last_exit"]["signal"] == signal.SIGTERM
    assert process_gone(pid)
    assert wd.events("watchdog.stopped")[0]["reason"] == "stop-file"


def test_stale_stop_file_is_removed_at_start(watchdogs: Start, tmp_path: Path) -> None:
    (tmp_path / "data" / "watchdog").mkdir(parents=True)
    (tmp_path / "data" / "watchdog" / "stop").touch()
    wd = watchdogs("--no-probe", command=SLEEPER)
    wd.wait_state("running")
    assert wd.proc.poll() is None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_child_and_watchdog(watchdogs: Start, sig: signal.Signals) -> None:
    wd = watchdogs("--no-probe", command=SLEEPER)
    pid = wd.wait_state("running")["pid"]
    wd.proc.send_signal(sig)
    assert wd.wait_exit() == 0
    assert wd.status()["state"] == "stopped"
    assert process_gone(pid)
    assert wd.events("watchdog.stopped")[0]["reason"] == f"signal {sig.name}"


def test_stops_when_parent_disappears(watchdogs: Start) -> None:
    parent = subprocess.Popen(["sleep", "600"])
    wd = watchdogs("--no-probe", "--parent-pid", str(parent.pid), command=SLEEPER)
    pid = wd.wait_state("running")["pid"]
    parent.kill()
    parent.wait()
    assert wd.wait_exit() == 0
    assert wd.status()["state"] == "stopped"
    assert process_gone(pid)
    assert "parent" in wd.events("watchdog.stopped")[0]["reason"]


def test_second_watchdog_for_the_same_data_dir_exits_2_naming_the_holder(
    watchdogs: Start, tmp_path: Path
) -> None:
    wd = watchdogs("--no-probe", command=SLEEPER)
    wd.wait_state("running")
    second = watchdog_cli("--data-dir", str(tmp_path / "data"), "--no-probe", "--", "true")
    assert second.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"pid {wd.pid}" in lines[0]
    assert wd.status()["watchdog_pid"] == wd.pid  # the first one's status is untouched


def test_status_and_stop_commands(watchdogs: Start, tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert watchdog_cli("status", "--data-dir", data).returncode == 3  # no status yet
    wd = watchdogs("--no-probe", command=SLEEPER)
    status = wd.wait_state("running")

    human = watchdog_cli("status", "--data-dir", data)
    assert human.returncode == 0
    assert "running" in human.stdout
    assert f"pid {status['pid']}" in human.stdout

    as_json = watchdog_cli("status", "--data-dir", data, "--json")
    assert as_json.returncode == 0
    import json

    assert json.loads(as_json.stdout)["pid"] == status["pid"]

    stopped = watchdog_cli("stop", "--data-dir", data)
    assert stopped.returncode == 0, stopped.stderr
    assert wd.wait_exit() == 0
    assert wd.status()["state"] == "stopped"
    assert watchdog_cli("status", "--data-dir", data).returncode == 3
    assert watchdog_cli("stop", "--data-dir", data).returncode == 0  # already stopped


def test_child_output_goes_to_a_rotating_log(watchdogs: Start) -> None:
    chatty = (
        "import time\n"
        "for i in range(3000): print(f'line {i:05d} ' + 'x' * 60)\n"
        "print('all' + ' written', flush=True); time.sleep(600)"
    )
    wd = watchdogs(
        "--no-probe", "--log-max-bytes", "20000", command=[sys.executable, "-c", chatty]
    )  # fmt: skip
    wd.wait_log("all written")
    logs = sorted(p.name for p in wd.dir.glob("server.log*"))
    assert logs == ["server.log", "server.log.1", "server.log.2", "server.log.3"]
    for name in logs:
        assert (wd.dir / name).stat().st_size <= 20000
    newest = (wd.dir / "server.log.1").read_text().splitlines() + (
        wd.dir / "server.log"
    ).read_text().splitlines()
    numbers = [int(line.split()[1]) for line in newest if line.startswith("line ")]
    assert numbers == list(range(numbers[0], 3000))  # whole lines, in order, none lost


def test_leftover_grandchildren_are_killed_with_their_group(
    watchdogs: Start, tmp_path: Path
) -> None:
    # The child starts a grandchild (think: a worker holding the port) and then dies.
    pidfile = tmp_path / "grandchild"
    script = f'sleep 600 & echo $! > "{pidfile}"; exit 1'
    wd = watchdogs("--no-probe", "--max-failures", "1", command=["sh", "-c", script])
    assert wd.wait_exit() == 1
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), what="the grandchild")
    assert process_gone(int(pidfile.read_text()))


def test_command_that_cannot_start_counts_as_a_failure(watchdogs: Start) -> None:
    wd = watchdogs(
        "--no-probe", *FAST, "--max-failures", "2", command=["/nonexistent/storykit"]
    )  # fmt: skip
    assert wd.wait_exit() == 1
    assert wd.status()["last_exit"]["code"] == 127
    assert len(wd.events("child.spawn_failed")) == 2
