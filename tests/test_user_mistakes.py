"""Mistakes a newcomer makes with `hooks`, `mcp` and `call`: each is one clear line, never a
traceback, and never echoes a secret (real processes, real state files)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from conftest import run_cli

from connector.api.delivery import Deliverer, DeliverySettings, deliveries, fan_out
from connector.api.subscriptions import subscribe
from connector.catalog import Catalog
from connector.client.retry import RetryPolicy
from connector.client.urlguard import UrlGuard, allowing
from connector.errors import ConnectorError
from connector.service.inbox import Inbox, NewEvent
from connector.store import Store


@pytest.mark.parametrize(("url", "says"), [
    ("http://xn--/", "invalid URL"),            # a malformed IDNA label: idna raised through
    ("http://xn--a/", "invalid URL"),
    ("http://127.0.0.1:99999/", "port 99999"),  # httpx parses it; no socket can use it
])
def test_url_guard_refuses_malformed_hosts_and_ports_as_errors(url: str, says: str) -> None:
    """The guard answers a URL httpx parses but cannot use with its own error, not idna's."""
    with pytest.raises(ConnectorError, match=says):
        UrlGuard().check(url, where="target_url")


def test_hooks_add_and_http_request_with_a_malformed_host_print_one_line(tmp_path: Path) -> None:
    env = {"CONNECTOR_HOME": str(tmp_path)}
    added = run_cli("hooks", "add", "ghl.contacts.created", "http://xn--/", env=env)
    assert added.status == 1, added.stderr
    assert "Traceback" not in added.stderr
    assert "/target_url" in added.stderr and "invalid URL" in added.stderr
    called = run_cli("call", "http.request", "--input", json.dumps({"url": "http://xn--/"}),
                     env=env)
    assert called.status == 1, called.stderr
    assert "Traceback" not in called.stderr and "invalid URL" in called.stderr


TOKEN = "pit-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


@pytest.mark.parametrize("args", [
    ("call", "ghl.contacts.get", "--input", '{"contactId": "abc"}', "--token-env", TOKEN),
    ("mcp", "--token-env", TOKEN),
    ("auth", "set-token", "main", "--token-env", TOKEN),
    ("auth", "login", "--client-id", "cid", "--client-secret-env", TOKEN),
])
def test_a_token_pasted_into_an_env_option_is_refused_without_echoing_it(
    args: tuple[str, ...],
) -> None:
    """`--token-env pit-...` (the token itself, where a variable name belongs) is a usage error
    that never repeats the value: before, `call` printed `$pit-... is not set` and `mcp`
    printed it as a warning into the MCP client's log."""
    result = run_cli(*args, timeout=30)
    assert result.status == 2, result.stderr
    assert TOKEN not in result.stderr and TOKEN not in result.stdout
    assert "NAME of an environment variable" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [
    ("mcp", "--sandbox", "--timeout", "nan"),
    ("mcp", "--timeout", "-1"),
    ("call", "ghl.contacts.get", "--input", '{"contactId": "abc"}', "--timeout", "nan"),
    ("call", "ghl.contacts.get", "--input", '{"contactId": "abc"}', "--timeout", "0"),
    ("auth", "login", "--client-id", "cid", "--timeout", "inf"),
])
def test_a_timeout_that_is_not_a_positive_number_is_a_usage_error(args: tuple[str, ...]) -> None:
    """Before, `mcp --timeout nan` started, and every tool call then logged a traceback
    (ValueError: Invalid value NaN) and answered only "Error executing tool"; a negative one
    failed each call with "no complete answer within -4s"."""
    result = run_cli(*args, timeout=30)
    assert result.status == 2, result.stderr
    assert "--timeout" in result.stderr and "not a number of seconds above 0" in result.stderr
    assert "Traceback" not in result.stderr


def test_hooks_add_with_an_action_or_unknown_id_says_what_it_is_once(tmp_path: Path) -> None:
    """An action id given as a trigger is named as an action (before: "did you mean
    'ghl.contacts.deleted'?"); an unknown id carries its hint once, not twice."""
    env = {"CONNECTOR_HOME": str(tmp_path)}
    action = run_cli("hooks", "add", "ghl.contacts.get", "https://hooks.example.com/a", env=env)
    assert action.status == 1 and "Traceback" not in action.stderr
    assert "'ghl.contacts.get' is an action, not a trigger" in action.stderr
    unknown = run_cli("hooks", "add", "nope.trigger", "https://hooks.example.com/a", env=env)
    assert unknown.status == 1 and "unknown trigger 'nope.trigger'" in unknown.stderr
    assert unknown.stderr.count("ghl-connector catalog") == 1, unknown.stderr


def test_hooks_redeliver_of_ids_not_dead_is_an_error_and_sends_none(tmp_path: Path,
                                                                    catalog: Catalog) -> None:
    """`hooks redeliver msg_typo` said "redelivering 0 dead deliveries", exit 0. Now every id
    that is unknown or not dead is named, exit 1, and the dead ones given with it stay dead
    (nothing half done); the right ids alone are redelivered."""
    db = tmp_path / "state.db"
    with Store(db) as store:
        with allowing("127.0.0.1"):
            subscribe(store, "ghl.contacts.created", "http://127.0.0.1:9/h", catalog=catalog)
        payload = {"webhookId": str(uuid.uuid4()), "type": "ContactCreate",
                   "locationId": "loc1", "id": "c1"}
        Inbox(store).add(NewEvent.from_payload(json.dumps(payload).encode(), payload,
                                               time.time()))
        [row] = store.query("SELECT id FROM inbox")
        event = Inbox(store).get(int(row["id"]))
        assert event is not None and fan_out(store, event) == 1
        settings = DeliverySettings(retry=RetryPolicy(attempts=1, base=0.01, cap=0.01),
                                    timeout=1.0, senders=1, idle=0.05)
        assert Deliverer(store, settings).run_once() == 1  # the guard refuses: dead at once
        [dead] = deliveries(store)
        assert dead.status == "dead"
    env = {"CONNECTOR_HOME": str(tmp_path)}
    wrong = run_cli("hooks", "redeliver", dead.id, "msg_typo", env=env)
    assert wrong.status == 1 and "Traceback" not in wrong.stderr
    assert "no delivery 'msg_typo'" in wrong.stderr and "nothing redelivered" in wrong.stderr
    with Store(db) as store:
        assert [d.status for d in deliveries(store)] == ["dead"]
    right = run_cli("hooks", "redeliver", dead.id, env=env)
    assert right.status == 0 and right.stdout.startswith("redelivering 1 ")
    again = run_cli("hooks", "redeliver", dead.id, env=env)
    assert again.status == 1 and f"{dead.id!r} is pending, not dead" in again.stderr


def test_hooks_list_is_a_subcommand_as_the_help_says(tmp_path: Path) -> None:
    """`hooks --help` says "list, add, remove"; `hooks list` was an invalid choice."""
    env = {"CONNECTOR_HOME": str(tmp_path)}
    listed = run_cli("hooks", "list", env=env)
    assert listed.status == 0, listed.stderr
    assert listed.stdout.startswith("no subscriptions")
    assert run_cli("hooks", "list", "--json", env=env).stdout == "[]\n"


def test_hooks_db_and_json_before_the_subcommand_are_kept(tmp_path: Path) -> None:
    """`hooks --db X add ...` (the order `hooks --help`'s usage shows) wrote the subscription
    to $CONNECTOR_HOME/state.db, not X: the subcommand's defaults overwrote the options."""
    home, chosen = tmp_path / "home", tmp_path / "chosen.db"
    home.mkdir()
    env = {"CONNECTOR_HOME": str(home), "CONNECTOR_HTTP_ALLOW": "127.0.0.1"}
    added = run_cli("hooks", "--db", str(chosen), "--json", "add", "ghl.contacts.created",
                    "http://127.0.0.1:9/h", env=env)
    assert added.status == 0, added.stderr
    made = json.loads(added.stdout)  # --json before the subcommand holds too
    assert chosen.exists() and not (home / "state.db").exists()
    listed = run_cli("hooks", "--db", str(chosen), "list", "--json", env=env)
    assert [s["id"] for s in json.loads(listed.stdout)] == [made["id"]]
    after = run_cli("hooks", "deliveries", "--db", str(chosen), "--json", env=env)
    assert (after.status, after.stdout) == (0, "[]\n")


def test_hooks_add_problems_are_placed_at_the_command_not_at_input(tmp_path: Path) -> None:
    """Each problem line said `<input>: /target_url: ...`, a place the user never typed."""
    bad = run_cli("hooks", "add", "", "ftp://x", env={"CONNECTOR_HOME": str(tmp_path)})
    assert bad.status == 1 and "<input>" not in bad.stderr
    lines = bad.stderr.removeprefix("error: ").splitlines()
    assert [line.split(": ")[:2] for line in lines] == [["hooks add", "/trigger"],
                                                        ["hooks add", "/target_url"]]


@pytest.mark.slow  # two server starts, one on a pseudo-terminal
def test_mcp_run_by_hand_on_a_terminal_says_it_waits_for_a_client(tmp_path: Path) -> None:
    """A newcomer typing `ghl-connector mcp` saw nothing at all (it reads JSON-RPC on stdin).
    On a terminal it now says so on stderr; with a pipe (an MCP client) it says nothing."""
    import os
    import pty
    import select
    import subprocess
    import sys

    from conftest import ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    env["CONNECTOR_HOME"] = str(tmp_path)
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "connector", "mcp", "--sandbox"],
                            stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=ROOT)
    os.close(follower)
    seen = b""
    try:
        assert proc.stderr is not None
        while b"Ctrl-C stops" not in seen and proc.poll() is None:
            ready, _, _ = select.select([proc.stderr], [], [], 30)
            assert ready, f"nothing said on stderr: {seen!r}"
            seen += os.read(proc.stderr.fileno(), 4096)
    finally:
        proc.kill()
        proc.communicate(timeout=10)  # reaps it and closes its pipes
        os.close(leader)
    assert b"waiting for an MCP client" in seen and b"--http" in seen
    piped = run_cli("mcp", "--sandbox", input="", env={"CONNECTOR_HOME": str(tmp_path)})
    assert piped.status == 0 and "waiting for an MCP client" not in piped.stderr
    assert piped.stdout == ""


def test_serve_with_a_bad_allow_entry_stops_at_the_start(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo in CONNECTOR_HTTP_ALLOW (read at each delivery) made `serve` start fine and then
    mark every delivery dead at once, public targets too. It is now said at the start."""
    monkeypatch.setenv("CONNECTOR_HTTP_ALLOW", "127.0.0.1;10.0.0.0/8")
    with Store(tmp_path / "state.db") as store, pytest.raises(ConnectorError,
                                                               match="CONNECTOR_HTTP_ALLOW"):
        Deliverer(store)
    folder = tmp_path / "recipes"
    folder.mkdir()
    shipped = Path(__file__).resolve().parents[1] / "recipes" / "new_contact_task.yaml"
    (folder / "new_contact_task.yaml").write_text(shipped.read_text())
    served = run_cli("serve", "--recipes", str(folder), "--port", "0", timeout=30,
                     env={"CONNECTOR_HOME": str(tmp_path), "CONNECTOR_HTTP_ALLOW": "10.0.0.0/33"})
    assert served.status == 1 and "Traceback" not in served.stderr
    assert "error: CONNECTOR_HTTP_ALLOW: '10.0.0.0/33'" in served.stderr


def test_hooks_a_redirecting_target_is_told_redirects_are_not_followed(
    tmp_path: Path, catalog: Catalog
) -> None:
    """A target answering 307 showed only `-> 307` in `hooks deliveries`: the user could not
    tell the pack never follows redirects (it must not: the guard never saw where they lead)."""
    from hooktarget import HookTarget

    target = HookTarget(default=307)
    try:
        with Store(tmp_path / "state.db") as store:
            with allowing("127.0.0.1"):
                sub = subscribe(store, "ghl.contacts.created", target.url, catalog=catalog)
                target.secret = sub.secret
                payload = {"webhookId": str(uuid.uuid4()), "type": "ContactCreate",
                           "locationId": "loc1", "id": "c1"}
                Inbox(store).add(NewEvent.from_payload(json.dumps(payload).encode(), payload,
                                                       time.time()))
                [row] = store.query("SELECT id FROM inbox")
                event = Inbox(store).get(int(row["id"]))
                assert event is not None and fan_out(store, event) == 1
                settings = DeliverySettings(retry=RetryPolicy(attempts=3, base=600, cap=600),
                                            timeout=2.0, senders=1, idle=0.05)
                assert Deliverer(store, settings).run_once() == 1  # the retry waits minutes
            [tried] = deliveries(store)
    finally:
        target.close()
    assert len(target.received) == 1 and target.received[0].verified
    assert (tried.status, tried.last_status) == ("pending", 307)
    assert tried.last_error is not None and "a redirect: never followed" in tried.last_error


def test_hooks_deliveries_says_when_a_pending_one_is_tried_again(tmp_path: Path,
                                                                 catalog: Catalog) -> None:
    """`hooks deliveries` showed a failing delivery as pending with no hint of when the next
    attempt comes (the backoff grows to an hour): the NEXT TRY column says it."""
    import re

    from hooktarget import HookTarget

    with HookTarget(default=500) as target, Store(tmp_path / "state.db") as store:
        with allowing("127.0.0.1"):
            sub = subscribe(store, "ghl.contacts.created", target.url, catalog=catalog)
            target.secret = sub.secret
            payload = {"webhookId": str(uuid.uuid4()), "type": "ContactCreate",
                       "locationId": "loc1", "id": "c1"}
            Inbox(store).add(NewEvent.from_payload(json.dumps(payload).encode(), payload,
                                                   time.time()))
            [row] = store.query("SELECT id FROM inbox")
            event = Inbox(store).get(int(row["id"]))
            assert event is not None and fan_out(store, event) == 1
            settings = DeliverySettings(retry=RetryPolicy(attempts=5, base=7200, cap=7200),
                                        timeout=2.0, senders=1, idle=0.05)
            assert Deliverer(store, settings).run_once() == 1
    assert target.received[0].verified
    listed = run_cli("hooks", "deliveries", env={"CONNECTOR_HOME": str(tmp_path)})
    header, line = listed.stdout.splitlines()
    assert "NEXT TRY" in header
    assert re.search(r" pending +1 +(in \d+h\d\dm|in \d+m\d\ds|in \d+s|now) +500 ", line), line


def test_hooks_list_needs_no_key(tmp_path: Path) -> None:
    """Listing never shows a secret, yet it opened every one: a state file moved without its
    key listed nothing but "cannot decrypt tokens ... run `ghl-connector auth login`"."""
    env = {"CONNECTOR_HOME": str(tmp_path), "CONNECTOR_HTTP_ALLOW": "127.0.0.1"}
    added = run_cli("hooks", "add", "ghl.contacts.created", "http://127.0.0.1:9/h",
                    "--filter", '{"country": "US"}', "--json", env=env)
    made = json.loads(added.stdout)
    (tmp_path / "state.key").unlink()
    listed = run_cli("hooks", "--json", env=env)
    assert listed.status == 0, listed.stderr
    assert json.loads(listed.stdout) == [{**{k: v for k, v in made.items() if k != "secret"},
                                          "owner": None}]
    table = run_cli("hooks", env=env)
    assert table.status == 0 and made["id"] in table.stdout and '{"country": "US"}' in table.stdout
    assert not (tmp_path / "state.key").exists()  # nor made a new key on the way


def test_hooks_add_help_teaches_examples_and_the_address_rule() -> None:
    """`hooks add --help` had no example, and no word of the guard a newcomer's first local
    target (127.0.0.1) runs into."""
    shown = run_cli("hooks", "add", "--help")
    assert shown.status == 0
    assert "examples:" in shown.stdout and "--filter '{\"status\"" in shown.stdout
    assert "CONNECTOR_HTTP_ALLOW=127.0.0.1:8911 ghl-connector hooks add" in shown.stdout


def test_usage_errors_are_one_line_with_a_close_command(tmp_path: Path) -> None:
    """A usage mistake prints one line (the error, a close command name, where the help is),
    not the usage block; exit 2. `--version` answers the installed version."""
    env = {"CONNECTOR_HOME": str(tmp_path)}
    typo = run_cli("catalgo", env=env)
    assert typo.status == 2
    assert typo.stderr.strip().splitlines() == [
        "ghl-connector: error: invalid choice: 'catalgo' [did you mean 'catalog'? see"
        " 'ghl-connector --help']"
    ]
    bad = run_cli("worker", "--lane-ttl", "0", env=env)
    assert bad.status == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "--lane-ttl" in bad.stderr and "ghl-connector worker --help" in bad.stderr
    missing = run_cli("api", "keys", "create", "--actions", "ghl.contacts.*", env=env)
    assert missing.status == 2 and "NAME" in missing.stderr
    version = run_cli("--version", env=env)
    assert version.status == 0 and version.stdout.startswith("ghl-connector ")


def test_state_commands_take_store_after_their_name(tmp_path: Path) -> None:
    """`--store` works after the command's name too (`runs --store URL`, `auth status --store`),
    as it does for serve, replay, hooks and api; it was 'invalid choice' or 'unrecognized'."""
    env = {"CONNECTOR_HOME": str(tmp_path / "home")}
    db = str(tmp_path / "elsewhere.db")
    stored = run_cli("auth", "set-token", "there", "--token-env", "PIT", "--location-id", "L1",
                     "--store", db, env={**env, "PIT": "pit-123"})
    assert stored.status == 0, stored.stderr
    status = run_cli("auth", "status", "--store", db, env=env)
    assert status.status == 0 and "there" in status.stdout, status
    assert "there" not in run_cli("auth", "status", env=env).stdout
    runs = run_cli("runs", "--store", db, "--json", env=env)
    assert runs.status == 0 and runs.stdout.strip() == "[]", runs


def test_run_with_a_broken_json_event_says_invalid_json_not_yaml(tmp_path: Path) -> None:
    """An event file named .json that does not parse gets JSON's error, at its line and
    column; a .yaml one keeps YAML's."""
    broken = tmp_path / "event.json"
    broken.write_text('{"id": "c1",, "email": "a@example.com"}\n')
    result = run_cli("run", "recipes/new_contact_task.yaml", "--event", str(broken), "--dry-run",
                     timeout=60)
    assert result.status == 1 and "Traceback" not in result.stderr
    assert f"{broken}:1:13: invalid JSON" in result.stderr and "YAML" not in result.stderr
    as_yaml = tmp_path / "event.yaml"
    as_yaml.write_text("id: [c1\n")
    result = run_cli("run", "recipes/new_contact_task.yaml", "--event", str(as_yaml), "--dry-run",
                     timeout=60)
    assert result.status == 1 and "invalid YAML" in result.stderr
