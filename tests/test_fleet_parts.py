"""The fleet's parts on their own: options and their errors, the inbox's claims by id, lanes
and their locks on the real Redis, and the CLI's one-line errors."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.errors import ConnectorError
from connector.fleet.options import FleetOptions, masked
from connector.service.inbox import Inbox, NewEvent
from connector.store import Store
from tests.fleetprocs import REDIS_URL, cleanup, need, new_queue


@pytest.mark.parametrize(("broker", "redis", "queue", "message"), [
    ("http://x", None, "q", "--broker 'http://x': not a broker URL"),
    ("amqp://u:secret@mq:5672/", None, "q", "needs a Redis"),
    ("redis://h:6379/0", "amqp://h", "q", "--redis 'amqp://h': not a Redis URL"),
    ("redis://h:6379/0", None, "a b", "--queue 'a b'"),
])
def test_fleet_options_name_the_option_at_fault(broker: str, redis: str | None, queue: str,
                                                message: str) -> None:
    with pytest.raises(ConnectorError) as caught:
        FleetOptions.parse(broker, redis, queue)
    assert message in str(caught.value)
    assert "secret" not in str(caught.value)


def test_redis_broker_is_the_shared_redis_and_passwords_are_masked() -> None:
    options = FleetOptions.parse("redis://:pw@h:6379/1", None, "q")
    assert options.redis == "redis://:pw@h:6379/1"
    assert masked("amqp://guest:guest@h:5672/") == "amqp://guest:***@h:5672/"
    assert "pw" not in repr(options)
    assert options.key("lane", "x") == "q:lane:x"


def test_inbox_claims_one_event_by_id_and_lists_the_unsettled(store: Store) -> None:
    """What the queue's feeder and lanes use of the inbox, on SQLite and PostgreSQL."""
    inbox = Inbox(store)
    inbox.add_many([NewEvent(f"w{i}", "ContactUpdate", "L", b"{}", 100.0 + i)
                    for i in range(3)])
    first, second, third = (e.id for e in inbox.unsettled())
    claimed = inbox.claim_event(second, "a", lease=60)
    assert claimed is not None and claimed.status == "processing" and claimed.attempts == 1
    assert inbox.claim_event(second, "b", lease=60) is None  # held, lease not over
    taken = inbox.claim_event(second, "b", lease=0)  # a lane's holder takes it over
    assert taken is not None and taken.claimed_by == "b" and taken.attempts == 2
    assert inbox.complete(second)
    assert inbox.claim_event(second, "b", lease=0) is None  # settled
    assert [e.id for e in inbox.unsettled()] == [first, third]
    assert [e.id for e in inbox.unsettled(after=first)] == [third]
    assert [e.id for e in inbox.unsettled(received_before=101.5)] == [first]


@pytest.fixture
def lanes() -> Iterator[object]:
    need(6379)
    from connector.fleet.lanes import Lanes, connect

    queue = new_queue()
    options = FleetOptions.parse(REDIS_URL, None, queue, lane_ttl=0.5)
    yield Lanes(connect(options), options)
    cleanup(queue)


def test_lanes_keep_inbox_order_and_locks_expire_unless_renewed(lanes: object) -> None:
    from connector.fleet.lanes import Lanes

    assert isinstance(lanes, Lanes)
    lanes.add([("c1", 7), ("c1", 3), ("c2", 5), ("c1", 3)])
    assert lanes.head("c1") == 3 and lanes.size("c1") == 2 and lanes.size("c2") == 1
    lanes.remove("c1", 3)
    assert lanes.head("c1") == 7
    assert lanes.lock("c1", "w1") and not lanes.lock("c1", "w2")
    assert lanes.locked(["c1", "c2"]) == [True, False]
    assert 0 < lanes.locked_for("c1") <= 0.5
    assert lanes.renew("c1", "w1") and not lanes.renew("c1", "w2")
    lanes.unlock("c1", "w2")  # not theirs: stays
    assert lanes.locked(["c1"]) == [True]
    time.sleep(0.6)  # w1 stopped renewing (killed): the lane is free again
    assert lanes.lock("c1", "w2")
    lanes.unlock("c1", "w2")
    assert lanes.locked(["c1"]) == [False]


@pytest.mark.parametrize(("args", "message"), [
    (["--broker", "nope"], "error: --broker 'nope': not a broker URL"),
    (["--broker", "amqp://guest:pw@127.0.0.1:5672/"], "needs a Redis"),
])
def test_worker_cli_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "recipes").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "connector", "worker", "--recipes", str(tmp_path / "recipes"),
         "--db", str(tmp_path / "state.db"), *args],
        capture_output=True, text=True, timeout=60, env={"CONNECTOR_HOME": str(tmp_path),
                                                         "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr and "pw" not in result.stderr


def test_a_message_that_is_not_the_feeders_is_dropped(lanes: object, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """A message with other arguments than (event id, lane) runs nothing and raises nothing
    (Dramatiq would retry it twenty times)."""
    from connector.fleet.lanes import Lanes
    from connector.fleet.runner import LaneRunner
    from connector.service.dispatcher import Outcome
    from connector.service.workers import WorkerPool

    assert isinstance(lanes, Lanes)
    ran: list[object] = []
    with Store(tmp_path / "state.db") as store:
        inbox = Inbox(store)
        pool = WorkerPool(inbox, lambda e: ran.append(e) or Outcome("done"))
        runner = LaneRunner(inbox, lanes, pool, "w1")
        for args in (("7", "lane"), (True, "lane"), (7, ""), (7, ["lane"])):
            runner.run(*args)  # type: ignore[arg-type]
    assert ran == [] and lanes.locked(["lane"]) == [False]
    assert caplog.text.count("dropped a message") == 4


@settings(max_examples=150, deadline=None)
@given(broker=st.text(max_size=60) | st.from_regex(r"(redis|amqp|rediss|unix)://[^ ]{0,30}"),
       redis=st.none() | st.text(max_size=40), queue=st.text(max_size=30))
def test_fleet_options_accept_or_refuse_any_text(broker: str, redis: str | None,
                                                 queue: str) -> None:
    """Whatever a user types, parsing gives options or a ConnectorError naming the option."""
    try:
        options = FleetOptions.parse(broker, redis, queue)
    except ConnectorError as exc:
        assert str(exc).startswith(("--broker", "--redis", "--queue"))
    else:
        assert options.queue == queue and options.redis


@pytest.mark.parametrize(("command", "broker", "message"), [
    ("worker", "amqp://guest:wrong-pw@127.0.0.1:5672/", "--broker 'amqp://guest:***@127.0.0.1"
     ":5672/': cannot reach the broker"),
    ("worker", "amqp://guest:wrong-pw@127.0.0.1:1/", "cannot reach the broker"),
    ("serve", "amqp://guest:wrong-pw@127.0.0.1:5672/", "cannot reach the broker"),
    ("worker", "redis://:wrong-pw@127.0.0.1:6379/notadb", "--broker 'redis://:***@127.0.0.1:6379"
     "/notadb': the database must be a number"),
])
def test_an_unusable_broker_stops_the_start_with_one_line(tmp_path: Path, command: str,
                                                          broker: str, message: str) -> None:
    """A RabbitMQ that refuses the password or is not there, and a Redis URL whose database is
    not a number (redis-py ignores it and uses db 0), stop the start with one `error:` line:
    before, the process printed `ready` and logged pika's tracebacks every 3 s forever."""
    need(6379, 5672)
    queue = new_queue()
    (tmp_path / "recipes").mkdir()
    recipe = Path(__file__).parent.parent / "recipes" / "new_contact_task.yaml"
    (tmp_path / "recipes" / recipe.name).write_text(recipe.read_text())
    extra = ["--health-port", "0"] if command == "worker" else ["--port", "0"]
    try:
        result = subprocess.run(
            [sys.executable, "-m", "connector", command, "--recipes", str(tmp_path / "recipes"),
             "--db", str(tmp_path / "state.db"), "--broker", broker, "--queue", queue,
             *(["--redis", REDIS_URL] if broker.startswith("amqp") else []), *extra],
            capture_output=True, text=True, timeout=40,
            env={"CONNECTOR_HOME": str(tmp_path), "PATH": "/usr/bin:/bin",
                 "CONNECTOR_TOKEN": "pit-x"},
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{command} kept running with {broker}") from exc
    finally:
        cleanup(queue)
    assert result.returncode == 1, result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
    assert "ready" not in result.stdout.splitlines()
    assert "Traceback" not in result.stderr and "wrong-pw" not in result.stderr


def test_worker_healthz_beyond_loopback_shows_peers_only_with_a_console_token(
    tmp_path: Path,
) -> None:
    """A worker's /healthz bound beyond loopback answers only its status without a console
    token as Bearer (the peers' host names and pids are not for anyone); on loopback, all."""
    import httpx

    from connector.console.access import create_token, health_details
    from connector.fleet.worker import HealthApp
    from connector.service.listener import ServerThread, bind_socket, guarded_server

    report = {"status": "ok", "role": "worker",
              "peers": [{"name": "worker-host-a-4242", "host": "host-a", "pid": 4242}]}
    with Store(tmp_path / "state.db") as store:
        token = create_token(store, "scraper")
        for host, shown_bare in (("0.0.0.0", {"status": "ok"}), ("127.0.0.1", report)):
            sock = bind_socket(host, 0)
            app = HealthApp(lambda: (True, dict(report)), health_details(store, host))
            served = ServerThread(guarded_server(app, log_config=None,
                                                 timeout_graceful_shutdown=1), sock, name="h")
            served.start()
            try:
                url = f"http://127.0.0.1:{sock.getsockname()[1]}/healthz"
                for headers in ({}, {"authorization": "Bearer gct_wrong"}):
                    assert httpx.get(url, headers=headers, timeout=5).json() == shown_bare
                bearer = {"authorization": f"Bearer {token}"}
                assert httpx.get(url, headers=bearer, timeout=5).json() == report
                # A page of another site re-pointed at 127.0.0.1 (DNS rebinding) reads no peers.
                foreign = {"host": "evil.example"}
                assert httpx.get(url, headers=foreign, timeout=5).json() == {"status": "ok"}
            finally:
                served.stop()
                sock.close()


def test_worker_messages_name_the_worker(tmp_path: Path) -> None:
    """A worker whose folder has a sync without its partner's secret says `error: worker: ...`
    (not `serve:`) and offers no --sandbox, which the worker does not have."""
    (tmp_path / "recipes").mkdir()
    sync = Path(__file__).parent.parent / "recipes" / "sync_linkedphone.yaml"
    (tmp_path / "recipes" / sync.name).write_text(sync.read_text())
    result = subprocess.run(
        [sys.executable, "-m", "connector", "worker", "--recipes", str(tmp_path / "recipes"),
         "--db", str(tmp_path / "state.db"), "--broker", REDIS_URL, "--queue", "q-unused"],
        capture_output=True, text=True, timeout=60,
        env={"CONNECTOR_HOME": str(tmp_path), "PATH": "/usr/bin:/bin",
             "CONNECTOR_TOKEN": "pit-x"},
    )
    assert result.returncode == 1, result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: worker: "), result.stderr[-2000:]
    assert "--sandbox" not in errors[0] and "serve:" not in result.stderr
