"""The console's pages as HTML text: every value shown passes through :func:`html.escape`.

Each function takes data the app read from the state file and returns markup; none reads
anything itself. Pages carry no inline script or style (the CSP forbids both): behaviour lives
in ``static/console.js``, which builds live rows with ``textContent`` only.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from connector.auth.redaction import redact
from connector.client.transcript import KEPT_FIRST
from connector.recipes.history import RunRecord, StepRecord
from connector.service.deadletters import DeadLetter
from connector.sync.audit import AuditEntry
from connector.sync.idmap import Link

__all__ = [
    "activity", "connections", "dead_letters", "layout", "login", "message", "run_detail",
    "runs", "syncs",
]  # fmt: skip

_NAV = (("", "Activity"), ("/runs", "Runs"), ("/syncs", "Syncs"),
        ("/deadletters", "Dead letters"), ("/connections", "Connections and limits"))  # fmt: skip


def e(value: object) -> str:
    """``value`` as text safe inside HTML elements and quoted attributes."""
    return html.escape("" if value is None else str(value), quote=True)


def when(moment: float | None) -> str:
    """An epoch time as ``YYYY-MM-DD HH:MM:SS`` UTC (empty for None)."""
    if moment is None:
        return ""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S")


def ago(moment: float | None, now: float | None = None) -> str:
    """How long ago (or, negative, how long until) ``moment`` is, in words."""
    if moment is None:
        return "never"
    delta = (now or time.time()) - moment
    word = "ago" if delta >= 0 else "from now"
    delta = abs(delta)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if delta >= size:
            return f"{delta / size:.1f} {unit} {word}"
    return f"{delta:.0f} s {word}"


def layout(base: str, title: str, body: str, *, csrf: str, current: str,
           logged_in: bool = False) -> str:
    """A whole page: navigation, the page's markup, the stylesheet and the script."""
    nav = "".join(
        f'<a href="{e(base + (path or "/"))}"{_current(path == current)}>{e(label)}</a>'
        for path, label in _NAV
    )
    if logged_in:
        nav += (f'<form method="post" action="{e(base)}/logout" class="inline">'
                f'<input type="hidden" name="csrf" value="{e(csrf)}">'
                '<button type="submit">Log out</button></form>')
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)} · ghl-connector console</title>"
        f'<link rel="stylesheet" href="{e(base)}/static/console.css">'
        f'<script src="{e(base)}/static/console.js" defer></script></head>'
        f'<body data-base="{e(base)}" data-csrf="{e(csrf)}"><header><strong>ghl-connector'
        f"</strong><nav>{nav}</nav></header><main><h1>{e(title)}</h1>{body}</main></body></html>"
    )


def _current(yes: bool) -> str:
    return ' aria-current="page"' if yes else ""


def message(text: str, kind: str = "note") -> str:
    """A notice box."""
    return f'<p class="{e(kind)}" role="status">{e(text)}</p>'


def login(base: str, csrf: str, error: str = "") -> str:
    """The login form (console token)."""
    note = message(error, "error") if error else ""
    return (
        f"{note}<p>This console listens beyond loopback: log in with a console token"
        " (<code>ghl-connector console token</code> creates one).</p>"
        f'<form method="post" action="{e(base)}/login" class="login">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        '<label>Console token <input type="password" name="token" autocomplete="off"'
        ' required></label> <button type="submit">Log in</button></form>'
    )


def activity(filters: Mapping[str, str], charts: Sequence[str]) -> str:
    """The live activity page: filters, the feed (filled by the script) and the charts."""
    fields = "".join(
        f'<label>{e(label)} <input name="{name}" value="{e(filters.get(name, ""))}"'
        f' placeholder="{e(hint)}"></label>'
        for name, label, hint in (
            ("location", "Location", "location id"), ("contact", "Contact", "e-mail or phone"),
            ("recipe", "Recipe", "recipe name"), ("status", "Status", "accepted, failed, ..."),
            ("kind", "Kind", "webhook, run, step, sync, poll, http, token"),
        )
    )
    return (
        f'<form method="get" class="filters">{fields} <button type="submit">Filter</button>'
        "</form>"
        '<p><span id="live" class="live">connecting…</span> <span id="skipped"></span></p>'
        '<table id="feed" class="feed"><thead><tr><th>Time</th><th>Kind</th><th>Status</th>'
        "<th>What</th><th>Detail</th></tr></thead><tbody></tbody></table>"
        f'<section class="charts">{"".join(charts)}</section>'
    )


def _run_link(base: str, run_id: str, text: str | None = None) -> str:
    return f'<a href="{e(base)}/runs/{e(quote(run_id, safe=""))}">{e(text or run_id)}</a>'


def runs(base: str, found: Sequence[RunRecord], recipe: str, status: str) -> str:
    """The runs list with its filters."""
    rows = "".join(
        f"<tr><td>{_run_link(base, r.id)}</td><td>{e(r.recipe)}</td><td>{e(r.trigger)}</td>"
        f'<td class="status {e(r.status)}">{e(r.status)}</td><td>{e(when(r.started_at))}</td>'
        f"<td>{e(_duration(r))}</td><td>{e(_error_line(r.error))}</td></tr>"
        for r in found
    )
    return (
        '<form method="get" class="filters">'
        f'<label>Recipe <input name="recipe" value="{e(recipe)}"></label>'
        f'<label>Status <input name="status" value="{e(status)}"'
        ' placeholder="succeeded, failed, dead_letter, ..."></label>'
        ' <button type="submit">Filter</button></form>'
        "<table><thead><tr><th>Run</th><th>Recipe</th><th>Trigger</th><th>Status</th>"
        f"<th>Started (UTC)</th><th>Took</th><th>Error</th></tr></thead><tbody>{rows}</tbody>"
        "</table>" + ("" if found else message("No runs recorded yet."))
    )


def run_detail(run: RunRecord) -> str:
    """One run: its event and each step with input, output, timing and error."""
    head = (
        '<dl class="facts">'
        f"<dt>Run</dt><dd>{e(run.id)}</dd><dt>Recipe</dt><dd>{e(run.recipe)}</dd>"
        f"<dt>Trigger</dt><dd>{e(run.trigger)}</dd>"
        f'<dt>Status</dt><dd class="status {e(run.status)}">{e(run.status)}</dd>'
        f"<dt>Started</dt><dd>{e(when(run.started_at))} UTC</dd>"
        f"<dt>Took</dt><dd>{e(_duration(run))}</dd><dt>Executions</dt><dd>{run.executions}</dd>"
        "</dl>" + _error_block(run.error)
    )
    steps = "".join(_step(s) for s in run.steps) or message("No step ran.")
    return (f"{head}<h2>Steps</h2>{steps}<details><summary>Trigger event</summary>"
            f"<pre>{e(_pretty(run.event))}</pre></details>")


def _step(step: StepRecord) -> str:
    item = "" if step.item < 0 else f" [item {step.item}]"
    cut = " (cut)" if step.truncated else ""
    return (
        f'<section class="step"><h3>{e(step.step_id + item)} <small>{e(step.action)}</small>'
        f' <span class="status {e(step.status)}">{e(step.status)}</span></h3>'
        f'<p class="meta">started {e(when(step.started_at))} UTC · {step.duration_ms:.1f} ms'
        f" · {step.attempts} attempt{'s' if step.attempts != 1 else ''}</p>"
        f"{_error_block(step.error)}"
        f'<div class="io"><div><h4>Request sent (input)</h4><pre>{e(_pretty(step.input))}'
        f"</pre></div><div><h4>Answer (output){e(cut)}</h4><pre>{e(_pretty(step.output))}</pre>"
        f"</div></div>{_http(step)}</section>"
    )


def _http(step: StepRecord) -> str:
    """The step's HTTP requests: method, redacted URL, the status answered, per attempt."""
    notes, total = step.http()
    if not notes:
        return ""
    rows = []
    for note in notes:
        status = "" if note.status is None else str(note.status)
        kind = "succeeded" if note.status is not None and note.status < 400 else "failed"
        answer = " ".join(part for part in (status, note.outcome or "") if part)
        rows.append(
            f'<tr class="http"><td>{note.attempt}</td><td>{e(note.method)}</td>'
            f'<td class="url">{e(redact(note.url))}</td>'
            f'<td class="status {kind}">{e(answer or "no answer")}</td>'
            f"<td>{note.elapsed_ms:.1f} ms</td></tr>"
        )
    dropped = total - len(notes)
    if dropped > 0:
        rows.insert(min(KEPT_FIRST, len(rows)), f'<tr class="http dropped"><td colspan="5">'
                    f"… {dropped} more request{'s' if dropped != 1 else ''} not kept</td></tr>")
    return (
        f'<h4>HTTP requests ({total})</h4><table class="http"><thead><tr><th>Attempt</th>'
        "<th>Method</th><th>URL</th><th>Status answered</th><th>Took</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _error_block(error: str | None) -> str:
    if not error:
        return ""
    text, hint = _split_hint(error)
    block = f'<p class="error">{e(text)}</p>'
    if hint:
        block += f'<p class="hint">Hint: {e(hint)}</p>'
    return block


def _split_hint(error: str) -> tuple[str, str]:
    """An error message and its trailing ``[hint]`` apart."""
    text = redact(error)
    if text.endswith("]") and " [" in text:
        body, _, hint = text.rpartition(" [")
        return body, hint[:-1].removeprefix("hint: ")
    return text, ""


def _error_line(error: str | None) -> str:
    return "" if not error else _split_hint(error)[0][:160]


def _duration(run: RunRecord) -> str:
    if run.finished_at is None:
        return "running" if run.status == "running" else ""
    return f"{(run.finished_at - run.started_at) * 1000:.0f} ms"


def _pretty(text: str | None) -> str:
    """Stored JSON text, indented (redacted again: what a page shows is never trusted)."""
    if text is None:
        return ""
    try:
        return redact(json.dumps(json.loads(text), indent=2, ensure_ascii=False))
    except ValueError:
        return redact(text)


def syncs(query: str, links: Sequence[Link], trail: Sequence[AuditEntry]) -> str:
    """The sync look-up: the id map of the contact found and its audit trail."""
    form = (
        '<form method="get" class="filters"><label>E-mail, phone or record id '
        f'<input name="q" value="{e(query)}" required></label>'
        ' <button type="submit">Look up</button></form>'
    )
    if not query:
        return form
    if not links and not trail:
        return form + message(f"Nothing in the sync id map or audit trail mentions {query!r}.")
    link_rows = "".join(
        f"<tr><td>{e(k.sync)}</td><td>{e(k.object)}</td><td>{e(k.ghl_id)}</td>"
        f"<td>{e(k.partner_id)}</td><td>{e(when(k.ghl_written))}</td>"
        f"<td>{e(when(k.partner_written))}</td><td>{e(k.deleted or '')}</td></tr>" for k in links
    )
    trail_rows = "".join(
        f"<tr><td>{e(when(a.at))}</td><td>{e(a.sync)}</td><td>{e(a.direction)}</td>"
        f'<td class="status {e(a.action)}">{e(a.action)}</td><td>{e(a.reason)}</td>'
        f"<td>{e(a.object)}</td><td>{_changes(a.changes)}</td></tr>" for a in trail
    )
    return (
        f"{form}<h2>Id map</h2><table><thead><tr><th>Sync</th><th>Object</th><th>GHL id</th>"
        "<th>Partner id</th><th>Last written to GHL</th><th>Last written to partner</th>"
        f"<th>Deleted</th></tr></thead><tbody>{link_rows}</tbody></table>"
        "<h2>Audit trail</h2><table><thead><tr><th>When (UTC)</th><th>Sync</th>"
        "<th>Direction</th><th>Action</th><th>Why</th><th>Object</th><th>Changes</th></tr>"
        f"</thead><tbody>{trail_rows}</tbody></table>"
    )


def _changes(changes: Mapping[str, tuple[Any, Any]]) -> str:
    items = "".join(
        f"<li><b>{e(name)}</b>: {e(redact(json.dumps(before)))} → "
        f"{e(redact(json.dumps(after)))}</li>"
        for name, (before, after) in sorted(changes.items())
    )
    return f"<ul class=changes>{items}</ul>" if items else ""


def dead_letters(base: str, letters: Sequence[DeadLetter], csrf: str, *, can_replay: bool,
                 note: str = "") -> str:
    """The dead-letter list with replay and discard for one or many."""
    rows = []
    for letter in letters:
        event = letter.event
        ident = str(event.id) if event is not None else letter.runs[0][0]
        what = (f"{event.type} · {event.webhook_id}" if event is not None
                else "run of `ghl-connector run`")
        runs_cell = "<br>".join(_run_link(base, run_id, recipe) for run_id, recipe in letter.runs)
        error = _error_line(event.last_error) if event is not None else ""
        rows.append(
            f'<tr><td><input type="checkbox" name="id" value="{e(ident)}"'
            f' aria-label="select {e(ident)}"></td><td>{e(ident)}</td><td>{e(what)}</td>'
            f"<td>{e(event.location_id if event else '')}</td>"
            f"<td>{e(event.attempts if event else '')}</td><td>{runs_cell}</td>"
            f"<td>{e(error)}</td></tr>"
        )
    replay_button = (
        '<button type="submit" name="action" value="replay">Replay selected</button>'
        if can_replay else '<span class="note">Replay runs with `ghl-connector replay` here'
        " (this console has no workers).</span>"
    )
    body = (message(note) if note else "") + (
        f'<form method="post" action="{e(base)}/deadletters">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        "<table><thead><tr><th></th><th>Id</th><th>Event</th><th>Location</th><th>Attempts</th>"
        f"<th>Dead runs</th><th>Why</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f'<p class="actions">{replay_button} <button type="submit" name="action"'
        ' value="discard">Discard selected</button></p></form>'
    )
    return body if letters else (message(note) if note else "") + message("No dead letters.")


def connections(
    summaries: Sequence[Mapping[str, object]],
    stored: Mapping[str, float],
    needed: Mapping[str, Sequence[str]],
    limits: Mapping[str, Sequence[Mapping[str, object]]],
    cursors: Sequence[Mapping[str, Any]],
    peers: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """Connections (expiry, last refresh, scopes granted vs needed), rate-limit headroom,
    pollers' cursors, and a fleet's live processes (``peers``; None: not a fleet)."""
    now = time.time()
    wanted = sorted({s for scopes in needed.values() for s in scopes})
    conn_rows = []
    for c in summaries:
        granted = c.get("scopes")
        if isinstance(granted, list):
            missing = [s for s in wanted if s not in granted]
            scope_text = f"{len(granted)} granted; missing: {', '.join(missing) or 'none'}"
        else:
            scope_text = "unknown (the server checks them)"
        expires = c.get("expires_at")
        conn_rows.append(
            f"<tr><td>{e(c.get('name'))}</td><td>{e(c.get('kind'))}</td>"
            f"<td>{e(c.get('location_id'))}</td>"
            f"<td>{e(ago(expires if isinstance(expires, float | int) else None, now))}</td>"
            f"<td>{e(ago(stored.get(str(c.get('name'))), now))}</td>"
            f"<td>{'yes' if c.get('needs_login') else 'no'}</td><td>{e(scope_text)}</td></tr>"
        )
    need_rows = "".join(f"<tr><td>{e(k)}</td><td>{e(', '.join(v) or 'none')}</td></tr>"
                        for k, v in sorted(needed.items()))
    limit_rows = "".join(_limit_row(app, snap) for app, snaps in sorted(limits.items())
                         for snap in snaps)
    cursor_rows = "".join(
        f"<tr><td>{e(c['trigger'])}</td><td>{e(c['scope'])}</td>"
        f"<td>{e(when(c['value'] / 1000))}</td><td>{e(ago(c['polled_at'], now))}</td>"
        f"<td>{e(ago(c['value'] / 1000, now))}</td></tr>" for c in cursors
    )
    return (
        "<h2>Connections</h2><table><thead><tr><th>Name</th><th>Kind</th><th>Location</th>"
        "<th>Token expires</th><th>Last login or refresh</th><th>Needs login</th>"
        f"<th>Scopes vs loaded recipes</th></tr></thead><tbody>{''.join(conn_rows)}</tbody>"
        "</table>" + ("" if summaries else message("No connection stored or given in"
                                                   " $CONNECTOR_TOKEN."))
        + "<h2>Scopes the loaded recipes need</h2><table><thead><tr><th>Recipe</th>"
        f"<th>Scopes</th></tr></thead><tbody>{need_rows}</tbody></table>"
        "<h2>Rate-limit headroom</h2><table><thead><tr><th>App</th><th>Location</th>"
        "<th>Burst headroom</th><th>Window</th><th>Daily used</th><th>Daily remaining</th>"
        f"<th>Wait</th></tr></thead><tbody>{limit_rows}</tbody></table>"
        + ("" if limit_rows else message("No call made yet in this process."))
        + "<h2>Pollers</h2><table><thead><tr><th>Trigger</th><th>Scope</th><th>Cursor (UTC)</th>"
        f"<th>Last poll</th><th>Lag</th></tr></thead><tbody>{cursor_rows}</tbody></table>"
        + ("" if cursors else message("No poller has run."))
        + ("" if peers is None else _fleet(peers, now))
    )


def _limit_row(app: str, snap: Mapping[str, object]) -> str:
    limit, used = _num(snap.get("limit")), _num(snap.get("in_window"))
    headroom = limit - used - _num(snap.get("in_flight"))
    daily = snap.get("daily_remaining")
    return (
        f"<tr><td>{e(app)}</td><td>{e(snap.get('key'))}</td><td>{headroom} of {limit}</td>"
        f"<td>{e(snap.get('window_seconds'))} s</td><td>{e(snap.get('daily_used'))}</td>"
        f"<td>{e('unknown' if daily is None else daily)}</td>"
        f"<td>{e(snap.get('wait_seconds'))} s</td></tr>"
    )


def _num(value: object) -> int:
    return int(value) if isinstance(value, int | float) else 0


def _fleet(peers: Sequence[Mapping[str, Any]], now: float) -> str:
    """The fleet's live processes (docs/scale-out.md): role, host, pid, up since, last beat."""
    rows = "".join(
        f"<tr><td>{e(p.get('role'))}</td><td>{e(p.get('host'))}</td><td>{e(p.get('pid'))}</td>"
        f"<td>{e(ago(_number(p.get('started')), now))}</td>"
        f"<td>{e(ago(_number(p.get('seen')), now))}</td>"
        f"<td>{e(p.get('in_flight', p.get('sent', '')))}</td></tr>" for p in peers
    )
    return ("<h2>Fleet</h2><table><thead><tr><th>Role</th><th>Host</th><th>PID</th>"
            "<th>Started</th><th>Last heartbeat</th><th>In flight (workers) / sent (serve)</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>"
            + ("" if peers else message("No live process (Redis unreachable?).")))


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
