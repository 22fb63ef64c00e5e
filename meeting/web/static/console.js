// Host console: polls GET /api/v1/meetings/{id}/live every second and renders the site table; the buttons call
// the live-control REST actions. Plain JS, no framework, no CDN (like app.js). Rows are keyed by site and updated
// in place, so a button the secretariat is about to click is not replaced under the pointer every second.
(function () {
  "use strict";
  var root = document.getElementById("console");
  if (!root) { return; }
  var meeting = root.getAttribute("data-meeting");
  var csrf = root.getAttribute("data-csrf");
  var T = JSON.parse(document.getElementById("console-text").textContent);
  var api = "/api/v1/meetings/" + meeting;
  var tbody = document.getElementById("site-rows");
  var errBox = document.getElementById("console-error");
  var rows = {};          // site id -> <tr>
  var layout = "";        // the site ids in table order; a change rebuilds the table

  function fmt(text, params) {
    return text.replace(/\{(\w+)\}/g, function (m, k) { return params[k] !== undefined ? params[k] : m; });
  }
  function num(v) { return v === null || v === undefined ? "–" : (Math.round(v * 10) / 10).toFixed(1); }
  function time(iso) {
    if (!iso) { return "–"; }
    var m = /T(\d\d:\d\d:\d\d)/.exec(iso);
    return m ? m[1] : iso;
  }
  function showError(msg) {
    if (msg) { errBox.textContent = msg; errBox.hidden = false; } else { errBox.hidden = true; }
  }
  function errorText(status, body) {
    try {
      var doc = JSON.parse(body);
      if (doc.detail && doc.detail.length && doc.detail[0].msg) { return doc.detail[0].msg; }
    } catch (e) { /* not JSON */ }
    return "HTTP " + status;
  }

  function call(method, path, body) {
    var opts = { method: method, credentials: "same-origin", headers: { "x-csrf-token": csrf } };
    if (body !== undefined) {
      opts.headers["content-type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(api + path, opts).then(function (r) {
      return r.text().then(function (text) {
        if (!r.ok) { throw new Error(errorText(r.status, text)); }
        return text ? JSON.parse(text) : null;
      });
    }).then(function (doc) {
      showError("");
      if (doc && doc.sites) { render(doc); }
      loadEvents();
      return doc;
    }).catch(function (e) { showError(e.message); });
  }

  function button(action, site, label) {
    var b = document.createElement("button");
    b.type = "button";
    b.setAttribute("data-action", action);
    b.setAttribute("data-site", site);
    b.textContent = label;
    return b;
  }

  function cell(tr, cls) {
    var td = document.createElement("td");
    td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function buildRow(s) {
    var tr = document.createElement("tr");
    tr.setAttribute("data-site", s.site);
    var name = cell(tr, "name");
    name.textContent = s.name + " (" + s.site + ")" + (s.host ? " · " + T.host : "");
    cell(tr, "state");
    cell(tr, "hand");
    cell(tr, "muted");
    cell(tr, "rtt");
    cell(tr, "loss");
    cell(tr, "bitrate");
    cell(tr, "since");
    cell(tr, "rehearsal-result");
    var act = cell(tr, "actions");
    if (!s.host) {
      act.appendChild(button("grant", s.site, T.grant));
      act.appendChild(button("revoke", s.site, T.revoke));
      act.appendChild(button("mute", s.site, T.mute));
      act.appendChild(button("unmute", s.site, T.unmute));
      act.appendChild(button("remove", s.site, T.remove));
    }
    return tr;
  }

  function rebuild(sites) {
    tbody.textContent = "";
    rows = {};
    var district = null;
    sites.forEach(function (s) {
      var d = s.district || T.district_none;
      if (d !== district) {
        district = d;
        var h = document.createElement("tr");
        h.className = "district";
        var th = document.createElement("th");
        th.colSpan = 10;
        th.textContent = d;
        h.appendChild(th);
        tbody.appendChild(h);
      }
      var tr = buildRow(s);
      rows[s.site] = tr;
      tbody.appendChild(tr);
    });
  }

  function rehearsalText(r) {
    if (!r) { return "–"; }
    return T.video + " " + (r.video_ok ? "✓" : "✗") + " (" + num(r.video_fps) + " fps) · " +
      T.audio + " " + (r.audio_ok ? "✓" : "✗") + " (" + num(r.audio_pps) + "/s) · " +
      T.received + " " + (r.received_ok ? "✓" : "✗");
  }

  function update(tr, s, floor, state) {
    tr.setAttribute("data-state", s.state);
    tr.setAttribute("data-hand", s.hand ? "1" : "0");
    tr.setAttribute("data-muted", s.muted ? "1" : "0");
    tr.className = "st-" + s.state + (s.hand ? " hand-up" : "") + (floor === s.site ? " floor" : "");
    var q = function (c) { return tr.querySelector("td." + c); };
    q("state").textContent = T[s.state] || s.state;
    q("hand").textContent = s.hand ? "✋ " + T.hand_up : "";
    q("muted").textContent = s.muted ? T.yes : T.no;
    var st = s.stats || {};
    q("rtt").textContent = num(st.rtt_ms);
    q("loss").textContent = num(st.loss_pct);
    q("bitrate").textContent = st.bitrate_kbps === null || st.bitrate_kbps === undefined ? "–" :
      String(Math.round(st.bitrate_kbps));
    q("since").textContent = time(s.since);
    q("rehearsal-result").textContent = rehearsalText(s.rehearsal);
    var gone = s.state === "removed" || state === "ended";
    var present = s.state === "connected";
    tr.querySelectorAll("button").forEach(function (b) {
      var a = b.getAttribute("data-action");
      var show = !gone && (a === "grant" ? present && floor !== s.site :
        a === "revoke" ? floor === s.site :
        a === "mute" ? !s.muted : a === "unmute" ? s.muted : true);
      b.hidden = !show;
    });
  }

  function render(doc) {
    var sites = doc.sites.slice().sort(function (a, b) {
      if (a.host !== b.host) { return a.host ? -1 : 1; }
      var da = a.district || "", db = b.district || "";
      return da === db ? a.site.localeCompare(b.site) : da.localeCompare(db, "vi");
    });
    var ids = sites.map(function (s) { return s.site; }).join(",");
    if (ids !== layout) { rebuild(sites); layout = ids; }
    sites.forEach(function (s) { update(rows[s.site], s, doc.floor, doc.state); });
    var state = document.getElementById("live-state");
    state.setAttribute("data-state", doc.state);
    state.textContent = T[doc.state] || doc.state;
    var floor = document.getElementById("floor");
    floor.setAttribute("data-site", doc.floor || "");
    var holder = doc.floor && rows[doc.floor];
    floor.textContent = doc.floor ? (holder ? holder.querySelector("td.name").textContent : doc.floor) : T.hall;
    var invited = doc.sites.filter(function (s) { return !s.host; });
    var on = invited.filter(function (s) { return s.state === "connected"; }).length;
    document.getElementById("counts").textContent = fmt(T.connected_count, { n: on, total: invited.length });
    document.getElementById("start").disabled = doc.state === "live";
    document.getElementById("stop").disabled = doc.state === "ended" || doc.state === "idle";
  }

  function poll() {
    fetch(api + "/live", { credentials: "same-origin" }).then(function (r) {
      return r.text().then(function (text) {
        if (!r.ok) { throw new Error(errorText(r.status, text)); }
        return JSON.parse(text);
      });
    }).then(function (doc) { showError(""); render(doc); })
      .catch(function (e) { showError(e.message && e.message.indexOf("HTTP") !== 0 ? e.message : T.offline); })
      .then(function () { setTimeout(poll, 1000); });
  }

  function loadEvents() {
    fetch(api + "/events?limit=30", { credentials: "same-origin" }).then(function (r) {
      return r.ok ? r.json() : [];
    }).then(function (events) {
      var ol = document.getElementById("events");
      ol.textContent = "";
      (events || []).forEach(function (ev) {
        var li = document.createElement("li");
        var site = ev.site_id || ev.site || "";
        li.setAttribute("data-action", ev.action || "");
        li.textContent = time(ev.at) + " · " + (ev.actor || "") + " · " + (T["ev_" + ev.action] || ev.action || "") +
          (site ? " · " + site : "") + (ev.detail && Object.keys(ev.detail).length ? " " + JSON.stringify(ev.detail) : "");
        ol.appendChild(li);
      });
    }).catch(function () { /* the table's poll reports the connection */ });
  }

  tbody.addEventListener("click", function (e) {
    var b = e.target.closest("button[data-action]");
    if (!b) { return; }
    var site = b.getAttribute("data-site");
    var action = b.getAttribute("data-action");
    if (action === "grant") { call("POST", "/floor", { site: site }); }
    else if (action === "revoke") { call("DELETE", "/floor"); }
    else if (action === "mute" || action === "unmute") { call("POST", "/mute", { site: site, muted: action === "mute" }); }
    else if (action === "remove") {
      var tr = rows[site];
      var name = tr ? tr.querySelector("td.name").textContent : site;
      if (window.confirm(fmt(T.confirm_remove, { name: name }))) {
        call("POST", "/sites/" + encodeURIComponent(site) + "/remove");
      }
    }
  });
  document.getElementById("start").addEventListener("click", function () { call("POST", "/live/start"); });
  document.getElementById("stop").addEventListener("click", function () {
    if (window.confirm(T.confirm_stop)) { call("POST", "/live/stop"); }
  });
  document.getElementById("rehearsal").addEventListener("click", function () {
    call("POST", "/live/rehearsal", { seconds: 5 });
  });
  document.getElementById("mute-all").addEventListener("click", function () { call("POST", "/mute", { site: null, muted: true }); });
  document.getElementById("unmute-all").addEventListener("click", function () { call("POST", "/mute", { site: null, muted: false }); });

  poll();
  loadEvents();
  setInterval(loadEvents, 3000);
})();
