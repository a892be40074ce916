// The console's live Activity feed: server-sent events in batches, rows built with textContent
// only (never markup from data). No other page needs a script.
(function () {
  "use strict";
  var base = document.body.getAttribute("data-base") || "";
  var feed = document.querySelector("#feed tbody");
  if (!feed || !window.EventSource) { return; }
  var live = document.getElementById("live");
  var skippedNote = document.getElementById("skipped");
  var MAX_ROWS = 300;
  var skipped = 0;
  var wanted = new URLSearchParams();
  var given = new URLSearchParams(window.location.search);
  ["location", "contact", "recipe", "status", "kind"].forEach(function (name) {
    var value = given.get(name);
    if (value) { wanted.set(name, value); }
  });
  var query = wanted.toString();
  var source = new EventSource(base + "/events" + (query ? "?" + query : ""));

  source.addEventListener("open", function () {
    live.textContent = "live";
    live.className = "live on";
  });
  source.addEventListener("error", function () {
    live.textContent = "reconnecting…";
    live.className = "live";
  });
  source.addEventListener("batch", function (message) {
    var data = JSON.parse(message.data);
    var rows = document.createDocumentFragment();
    for (var i = data.events.length - 1; i >= 0; i--) { rows.appendChild(row(data.events[i])); }
    feed.insertBefore(rows, feed.firstChild);
    while (feed.rows.length > MAX_ROWS) { feed.deleteRow(-1); }
    skipped += data.skipped || 0;
    if (skipped) { skippedNote.textContent = skipped + " events not shown (too many at once)"; }
  });

  function text(value) { return value === null || value === undefined ? "" : String(value); }

  function cell(tr, value) {
    var td = document.createElement("td");
    td.textContent = text(value);
    tr.appendChild(td);
    return td;
  }

  function runLink(td, runId) {
    if (!runId) { return; }
    var a = document.createElement("a");
    a.href = base + "/runs/" + encodeURIComponent(runId);
    a.textContent = runId;
    a.className = "run-link";
    td.appendChild(document.createTextNode(" "));
    td.appendChild(a);
  }

  function describe(ev) {
    var contact = [ev.email, ev.phone, ev.contact].filter(Boolean).join(" ");
    switch (ev.kind) {
      case "webhook":
        return [ev.type || ev.app, [ev.reason, ev.webhook_id, ev.location, contact]];
      case "run":
        return [ev.recipe, [ev.error, ev.duration_ms !== undefined ? ev.duration_ms + " ms" : "",
                            contact]];
      case "step":
        return [ev.action, [ev.step, ev.duration_ms + " ms", ev.error]];
      case "sync":
        return [ev.sync + " " + text(ev.object) + " " + text(ev.direction),
                [ev.reason, ev.ghl_id, ev.partner_id]];
      case "poll":
        return [ev.trigger, [ev.found + " found", ev.location]];
      case "http":
        return [ev.method + " " + ev.path, [ev.reason, "attempt " + ev.attempt, ev.base]];
      case "token":
        return [ev.connection, [ev.location]];
      default:
        return [ev.kind, []];
    }
  }

  function row(ev) {
    var tr = document.createElement("tr");
    tr.className = "ev " + text(ev.kind) + " " + text(ev.status);
    var shown = describe(ev);
    cell(tr, new Date(ev.at * 1000).toISOString().slice(11, 23));
    cell(tr, ev.kind);
    cell(tr, ev.status);
    cell(tr, shown[0]);
    var detail = cell(tr, shown[1].filter(function (x) { return x; }).map(text).join(" · "));
    runLink(detail, ev.run_id);
    return tr;
  }
}());
