"""What a fleet's processes check about each other, on the real PostgreSQL, Redis and
RabbitMQ: a worker on another store than serve's refuses to start (and refuses another store's
messages), another recipe folder is a warning, a key that does not open the stored connections
stops the start, /healthz during a broker outage (serve degraded, worker unhealthy), and the
messages and help that name the right option."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from connector.sandbox.server import SandboxServer
from tests.fixtures_store import PG_URL, postgres_schema
from tests.fleetprocs import (
    NOTE_PER_UPDATE,
    REDIS_URL,
    Fleet,
    WorkerProcess,
    cleanup,
    fleet_args,
    need,
    new_queue,
    update_payload,
)
from tests.serveproc import wait_for


class Proxy:
    """A TCP forwarder to 127.0.0.1:``port`` that a test can cut (a broker outage, without
    touching the machine's real service)."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.open = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while self.open:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            if not self.open:
                client.close()
                upstream.close()
                return
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def cut(self) -> None:
        """Refuse new connections and close every open one."""
        self.open = False
        self.listener.close()
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass


def run_cli(*args: str, home: Path, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "connector", *args], capture_output=True, text=True,
        timeout=timeout, env={"CONNECTOR_HOME": str(home), "PATH": "/usr/bin:/bin",
                              **(env or {})},
    )


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_a_worker_on_another_store_than_serves_refuses_to_start(ghl: SandboxServer,
                                                                tmp_path: Path) -> None:
    """The user trial: serve on PostgreSQL, a worker started without --store fell back to
    $CONNECTOR_HOME/state.db, printed `ready` and dropped every event. Now it stops with one
    line naming both stores (no password); the one on serve's store starts and prints it."""
    need(6379)
    with postgres_schema() as url:
        # A password in the URL (trust authentication ignores it): it must never be shown.
        if not PG_URL.startswith("postgresql://postgres@"):
            pytest.skip("the test database's URL is not postgresql://postgres@...")
        store = url.replace("postgresql://postgres@", "postgresql://postgres:s3cret-pw@")
        with Fleet(ghl, tmp_path, REDIS_URL, workers=0, recipes={"note": NOTE_PER_UPDATE},
                   store=store) as fleet:
            assert f"store: {store.replace('s3cret-pw', '***')}" in fleet.serve.summary
            lost = WorkerProcess(fleet.serve.recipes, tmp_path / "home",
                                 extra=fleet_args(REDIS_URL, fleet.queue),
                                 **{k: v for k, v in fleet.common.items() if k != "extra"})
            with pytest.raises(RuntimeError):
                lost.start()
            assert lost.stop() == 1  # already ended: reads the rest and closes its pipes
            errors = [line for line in lost.logs if line.startswith("error:")]
            assert len(errors) == 1, lost.logs[-10:]
            assert str(tmp_path / "home" / "state.db") in errors[0]
            assert "postgresql://postgres:***@127.0.0.1" in errors[0]
            assert "s3cret-pw" not in "\n".join(lost.logs + lost.summary)
            assert "ready" not in lost.summary

            good = WorkerProcess(fleet.serve.recipes, tmp_path / "home", **fleet.common)
            fleet.workers.append(good)
            good.start()
            assert f"store: {store.replace('s3cret-pw', '***')}" in good.summary
            assert "recipes: 1 loaded from" in "\n".join(good.summary)
            health = good.health()
            assert health.status_code == 200 and health.json()["status"] == "ok"
            # And serve's peers show the worker on the same store (no "problem").
            peers = fleet.serve.health().json()["peers"]
            assert [p for p in peers if p["role"] == "worker" and "problem" not in p]


def test_a_message_of_another_store_is_not_run_and_the_worker_turns_unhealthy(
    ghl: SandboxServer, tmp_path: Path,
) -> None:
    """A worker whose serve is not running (so nothing to compare at start) gets a message
    naming another store: it does not run it (nor ack it as done), logs it at ERROR once a
    minute, and its /healthz answers 503 saying why."""
    need(6379)
    from connector.fleet.broker import WorkQueue
    from connector.fleet.options import FleetOptions

    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "note.yaml").write_text(NOTE_PER_UPDATE)
    queue = new_queue()
    worker = WorkerProcess(folder, tmp_path / "home", base_url=ghl.base_url,
                           token=ghl.private_token, location_id=ghl.location_id,
                           public_keys=ghl.public_keys, extra=fleet_args(REDIS_URL, queue))
    sender = None
    try:
        worker.start()
        assert worker.health().status_code == 200
        sender = WorkQueue(FleetOptions.parse(REDIS_URL, None, queue), store_id="0123456789abcdef")
        for _ in range(3):
            sender.send(1, "contact/x")
        assert wait_for(lambda: worker.health().status_code == 503, timeout=20)
        report = worker.health().json()
        assert report["status"] == "unhealthy"
        assert any("another store (id 0123456789abcdef)" in p for p in report["problems"])
        foreign = [r for r in worker.log_records() if r.get("level") == "ERROR"
                   and "in another store" in r.get("message", "")]
        assert len(foreign) == 1, worker.logs[-20:]
        assert ghl.writes("POST /contacts/{contactId}/notes") == 0
    finally:
        if sender is not None:
            sender.close()
        worker.stop()
        cleanup(queue)


def test_a_worker_with_another_recipe_folder_warns(ghl: SandboxServer, tmp_path: Path) -> None:
    """serve's recipes (names and content digests) are in its heartbeat: a worker whose folder
    differs says so at start and in /healthz."""
    need(6379)
    with Fleet(ghl, tmp_path, REDIS_URL, workers=0,
               recipes={"note": NOTE_PER_UPDATE, "other": NOTE_PER_UPDATE}) as fleet:
        folder = tmp_path / "worker-recipes"
        folder.mkdir()
        (folder / "note.yaml").write_text(NOTE_PER_UPDATE.replace("Note every", "A note on"))
        worker = WorkerProcess(folder, tmp_path / "home", **fleet.common)
        fleet.workers.append(worker)
        worker.start()
        warnings = [line for line in worker.summary if line.startswith("warning: the recipe")]
        assert len(warnings) == 1, worker.summary
        assert "only serve's: other.yaml" in warnings[0]
        assert "different content: note.yaml" in warnings[0]
        report = worker.health().json()
        assert list(report["recipes_differ"].values()) == [warnings[0].split("(", 1)[1]
                                                           .split("): ", 1)[0]]
        # The same folder: no warning.
        same = WorkerProcess(fleet.serve.recipes, tmp_path / "home", **fleet.common)
        fleet.workers.append(same)
        same.start()
        assert not [line for line in same.summary if line.startswith("warning:")]
        assert "recipes_differ" not in same.health().json()


def test_a_key_that_does_not_open_the_stored_connections_stops_the_start(
    tmp_path: Path,
) -> None:
    """A connection stored with one CONNECTOR_KEY, then serve and worker started with another:
    one error line each (before: `ready`, then every event dead-lettered with `cannot decrypt
    tokens`); `auth status` says `key mismatch` instead of `ok`."""
    need(6379)
    import base64
    import os

    keys = [base64.b64encode(os.urandom(32)).decode() for _ in range(2)]
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "note.yaml").write_text(NOTE_PER_UPDATE)
    stored = run_cli("auth", "set-token", "acme", "--token-env", "GHL_PIT", "--location-id",
                     "loc1", home=tmp_path, env={"CONNECTOR_KEY": keys[0], "GHL_PIT": "pit-1"})
    assert stored.returncode == 0, stored.stderr
    status = run_cli("auth", "status", home=tmp_path, env={"CONNECTOR_KEY": keys[0]})
    assert " ok" in status.stdout and "mismatch" not in status.stdout
    status = run_cli("auth", "status", home=tmp_path, env={"CONNECTOR_KEY": keys[1]})
    assert "key mismatch" in status.stdout and " ok" not in status.stdout, status.stdout
    assert "the key does not match" in status.stderr
    queue = new_queue()
    try:
        for command, extra in (("serve", ("--port", "0")), ("worker", ("--broker", REDIS_URL,
                                                                     "--queue", queue))):
            result = run_cli(command, "--recipes", str(folder), *extra, home=tmp_path,
                             env={"CONNECTOR_KEY": keys[1]})
            assert result.returncode == 1, (command, result.stdout)
            errors = error_lines(result)
            assert len(errors) == 1, (command, result.stderr[-2000:])
            assert errors[0].startswith(f"error: {command}: the stored connections ('acme')")
            assert "the key does not match" in errors[0] and "CONNECTOR_KEY" in errors[0]
            assert "ready" not in result.stdout.splitlines()
    finally:
        cleanup(queue)


def test_healthz_during_a_broker_outage(ghl: SandboxServer, tmp_path: Path) -> None:
    """The broker (Redis here, reached through a proxy the test cuts) goes away: serve still
    stores webhooks, so it answers 200 "degraded" and says the queue is unreachable; a worker
    whose consumer cannot reach the broker answers 503 with the reason."""
    need(6379)
    proxy = Proxy(6379)
    broker = f"redis://127.0.0.1:{proxy.port}/15"
    with Fleet(ghl, tmp_path, broker, workers=1, recipes={"note": NOTE_PER_UPDATE}) as fleet:
        assert fleet.serve.health().json()["status"] == "ok"
        assert fleet.workers[0].health().status_code == 200
        proxy.cut()
        assert wait_for(lambda: fleet.serve.health().json()["status"] == "degraded",
                        timeout=30, step=0.5), fleet.serve.health().text
        reply = fleet.serve.health()
        assert reply.status_code == 200
        assert reply.json()["queue"].startswith("unreachable: webhooks are stored")
        body = json.dumps(update_payload(ghl, "c1", 0)).encode()
        stored = httpx.post(fleet.serve.url, content=body, timeout=10, headers={
            "content-type": "application/json", **ghl.app.keys.sign(body)})
        assert stored.status_code == 200
        worker = fleet.workers[0]

        def broker_down() -> bool:
            reply = worker.health()
            problems = reply.json().get("problems", [])
            return reply.status_code == 503 and any(
                p.startswith("the queue consumer cannot reach the broker: broker redis://")
                for p in problems)

        assert wait_for(broker_down, timeout=30, step=0.5), worker.health().text
        assert worker.health().json()["status"] == "unhealthy"


def test_errors_name_the_option_the_user_gave(tmp_path: Path) -> None:
    """`worker --broker redis://...` that cannot be reached names --broker (not --redis, which
    the user never gave); a --health-port in use names --health-port (not --port)."""
    need(6379)
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "note.yaml").write_text(NOTE_PER_UPDATE)
    result = run_cli("worker", "--recipes", str(folder), "--broker",
                     "redis://127.0.0.1:28999/0", home=tmp_path,
                     env={"CONNECTOR_TOKEN": "pit-x"})
    errors = error_lines(result)
    assert len(errors) == 1, result.stderr[-2000:]
    assert errors[0].startswith("error: --broker redis://127.0.0.1:28999/0: cannot reach Redis")
    busy = socket.create_server(("127.0.0.1", 0))
    queue = new_queue()
    try:
        result = run_cli("worker", "--recipes", str(folder), "--broker", REDIS_URL, "--queue",
                         queue, "--health-port", str(busy.getsockname()[1]), home=tmp_path,
                         env={"CONNECTOR_TOKEN": "pit-x"})
    finally:
        busy.close()
        cleanup(queue)
    errors = error_lines(result)
    assert len(errors) == 1 and errors[0].endswith("[use another --health-port]"), \
        result.stderr[-2000:]


def test_help_describes_each_command(tmp_path: Path) -> None:
    """worker's --broker help is its own (not serve's "serve then only receives..."), and
    serve's says /healthz reports the fleet's peers."""
    worker = " ".join(run_cli("worker", "--help", home=tmp_path).stdout.split())
    assert "serve then only receives" not in worker
    assert "this worker runs the events it takes" in worker
    serve = " ".join(run_cli("serve", "--help", home=tmp_path).stdout.split())
    assert "GET /healthz reports the inbox and, with --broker, the fleet's peers" in serve


def test_store_identity_is_the_stores_own(tmp_path: Path) -> None:
    """Two opens of one store share its identity; another store has another one."""
    from connector.fleet.identity import store_identity
    from connector.store import Store

    with Store(tmp_path / "a.db") as a, Store(tmp_path / "b.db") as b:
        first = store_identity(a)
        assert first.id != store_identity(b).id
    with Store(tmp_path / "a.db") as a:
        assert store_identity(a).id == first.id
    with postgres_schema() as url, Store(url) as pg:
        assert store_identity(pg).id not in (first.id, "")
        assert store_identity(pg).id == store_identity(pg).id
