# ruff: noqa: E402  (imports follow the sys.path line that picks the old checkout)
"""Made once with the connector's main code before Alembic (numbered migrations 1-10):
tests/data/state-numbered.db and its key, for tests/test_store.py's in-place upgrade test.

Run from a checkout of that code: python make_state_numbered.py OUT.db CHECKOUT
"""

import base64
import json
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, sys.argv[2])
import connector.store as s

assert hasattr(s, "MIGRATIONS"), "run with the main checkout's code"
from connector.auth.connection import Connection, ConnectionStore
from connector.auth.vault import Vault
from connector.recipes.history import History, StepRecord
from connector.recipes.ledger import Ledger
from connector.service.inbox import Inbox, NewEvent
from connector.store import Store
from connector.sync.audit import AuditEntry, record

out = Path(sys.argv[1])
out.unlink(missing_ok=True)
key = bytes(range(32))
store = Store(out)
conns = ConnectionStore(store, Vault(out.with_name("state.key"), key=key))
conns.save(
    Connection(
        name="acme",
        kind="oauth",
        user_type="Location",
        base_url="http://127.0.0.1:9",
        access_token="legacy-access-token",
        refresh_token="legacy-refresh-token",
        client_secret="legacy-client-secret",
        client_id="cid",
        location_id="L1",
        scopes=frozenset({"contacts.readonly"}),
        expires_at=2e9,
    )
)
inbox = Inbox(store)
for i in range(3):
    body = json.dumps(
        {"type": "ContactCreate", "locationId": "L1", "webhookId": f"w-{i}", "id": f"c{i}"}
    ).encode()
    inbox.add(NewEvent.from_payload(body, json.loads(body), 1000.0 + i))
claimed = inbox.claim(1, "old-worker", now=2000.0)
inbox.complete(claimed[0].id)
hist = History(store)
hist.start("w-0:r", "welcome", "welcome.yaml", "ghl.contact.created", {"id": "c0"})
with store.transaction() as db:
    History.write_step(
        db,
        "w-0:r",
        StepRecord(
            step_id="s1",
            item=-1,
            position=0,
            action="ghl.tasks.create",
            status="succeeded",
            attempts=1,
            input='{"a": 1}',
            output='{"id": "t1"}',
            truncated=False,
            error=None,
            started_at=1500.5,
            duration_ms=12.25,
        ),
    )
    Ledger.write(db, "w-0:r", "s1", -1, {"id": "t1"})
    db.execute("INSERT INTO run_intents VALUES ('w-0:r', 's2', -1, 'ghl.notes.create', 1501.0)")
    db.execute(
        "INSERT INTO sync_links (sync, object, ghl_id, partner_id, ghl_hash, updated_at) VALUES ('crm', 'contact', 'g1', 'p1', 'h', 1600.0)"
    )
    record(
        db,
        AuditEntry(
            1601.0,
            "crm",
            "w-1",
            "contact",
            "ghl_to_partner",
            "create",
            "new",
            "g1",
            "p1",
            {"email": ("a", "b")},
        ),
    )
    db.execute(
        "INSERT INTO poll_cursors VALUES ('ghl.contacts.changed', 'L1', 1733500000000, 1733400000000, 1700.0)"
    )
    db.execute(
        "INSERT INTO poll_seen VALUES ('ghl.contacts.changed', 'L1', 'c9', 'v1', 1733500000000, 1700.0)"
    )
    db.execute(
        "INSERT INTO footprints (at, app, record, writer, run, chain, fields) VALUES (1800.0, 'ghl', 'c1', 'recipe:x', 'w-0:r', '[]', '{}')"
    )
    db.execute("INSERT INTO footprint_salt VALUES (1, x'00112233')")
hist.finish("w-0:r", "succeeded")
print(store.schema_version())
store.close()
c = sqlite3.connect(out)
c.execute("PRAGMA journal_mode=DELETE")
c.execute("VACUUM")
c.close()
print(base64.b64encode(key).decode())
