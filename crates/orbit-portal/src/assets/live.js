// The Live page: keeps the tables current from the server-sent snapshots of
// /portal/t/{tenant}/live/events and counts down to each recall once a
// second. EventSource reconnects by itself after a restart; meanwhile the
// status badge says "reconnecting".
(function () {
  var table = document.getElementById("parked");
  if (!table) return;
  var tenant = table.dataset.tenant, csrf = table.dataset.csrf;
  var status = document.getElementById("live-status");
  var offset = 0; // server clock minus ours
  function setStatus(cls, text) { status.className = "status " + cls; status.textContent = text; }
  function el(tag, text, cls) { var e = document.createElement(tag); if (text != null) e.textContent = text; if (cls) e.className = cls; return e; }
  function fmt(ms) { var s = Math.max(0, Math.ceil(ms / 1000)); var m = Math.floor(s / 60); s = s % 60; return m + ":" + (s < 10 ? "0" : "") + s; }
  function action(path, label, cls, withTo) {
    var f = el("form", null, "inline"); f.method = "post";
    f.action = "/portal/t/" + encodeURIComponent(tenant) + "/live/parked/" + encodeURIComponent(path[0]) + "/" + path[1];
    var h = el("input"); h.type = "hidden"; h.name = "_csrf"; h.value = csrf; f.appendChild(h);
    if (withTo) { var t = el("input"); t.type = "text"; t.name = "to"; t.placeholder = "ext."; t.size = 5; t.setAttribute("aria-label", "retrieve to extension"); f.appendChild(t); }
    var b = el("button", label, cls); b.type = "submit"; f.appendChild(b);
    return f;
  }
  function renderParked(list) {
    var body = table.tBodies[0], seen = {};
    list.forEach(function (p) {
      seen[p.id] = true;
      var row = body.querySelector('tr[data-id="' + CSS.escape(p.id) + '"]');
      if (!row) {
        row = el("tr"); row.dataset.id = p.id;
        [p.caller_number + " " + p.caller_name, p.parked_by, p.parked_on].forEach(function (t) { row.appendChild(el("td", t)); });
        row.appendChild(el("td", "", "state")); row.appendChild(el("td", "", "timer")); row.appendChild(el("td", p.retrieve_number));
        var acts = el("td"); acts.appendChild(action([p.id, "retrieve"], "Retrieve", "", true)); acts.appendChild(action([p.id, "hangup"], "Hang up", "danger", false));
        row.appendChild(acts); body.appendChild(row);
      }
      row.dataset.recallAt = p.recall_at == null ? "" : String(p.recall_at);
      row.dataset.recalling = p.recalling || "";
      row.querySelector(".state").textContent = p.state;
    });
    Array.prototype.slice.call(body.rows).forEach(function (r) { if (!seen[r.dataset.id]) r.remove(); });
    tick();
  }
  function renderRows(id, list, cols) {
    var body = document.getElementById(id).tBodies[0];
    body.textContent = "";
    list.forEach(function (x) { var r = el("tr"); cols(x).forEach(function (t) { r.appendChild(el("td", t == null ? "" : String(t))); }); body.appendChild(r); });
  }
  function tick() {
    var now = Date.now() + offset;
    Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
      var cell = r.querySelector(".timer"); if (!cell) return;
      cell.textContent = r.dataset.recallAt ? fmt(Number(r.dataset.recallAt) - now) : "recalling " + (r.dataset.recalling || "");
    });
  }
  setInterval(tick, 1000);
  var es = new EventSource("/portal/t/" + encodeURIComponent(tenant) + "/live/events");
  es.addEventListener("open", function () { setStatus("live", "live"); });
  es.addEventListener("error", function () { setStatus("reconnecting", "reconnecting…"); });
  es.addEventListener("snapshot", function (e) {
    var s = JSON.parse(e.data);
    offset = s.now - Date.now();
    setStatus("live", "live");
    renderParked(s.parked);
    renderRows("registrations", s.registrations, function (r) { return [r.extension, r.contact, r.transport + " " + r.source, r.user_agent]; });
    renderRows("calls", s.calls, function (c) { return [c.caller, c.callee, c.answered_by, c.state, new Date(c.started_at).toISOString().slice(0, 19).replace("T", " ")]; });
  });
})();
