// The room PC's kiosk page (/kiosk/{site}#t=<site token>): heartbeats, waits for the site's next meeting, joins it at
// its start by itself (or at once when the hall starts it early: join_now), leaves at its end, waits again.
// The site token lives in the URL fragment (never sent to a server), then in localStorage; the address bar is cleaned.
(function () {
  "use strict";
  var CFG = window.LtJoin.config, T = window.LtJoin.texts, fmt = window.LtJoin.fmt;
  var SITE = CFG.site, KEY = "lt-kiosk-token-" + SITE;
  var params = new URLSearchParams(location.search);
  var POLL_S = Math.max(2, Number(params.get("poll")) || 30);   // ?poll=N: tests look more often
  var HEARTBEAT_S = 30, HOST_LEAD_S = 10;
  var token = null, current = null, timer = null, endTimer = null, done = {}, backoff = 0;

  function $(id) { return document.getElementById(id); }
  function say(text, state) {
    $("kiosk-status").textContent = text;
    if (state) { $("waiting").setAttribute("data-state", state); }
  }

  function takeToken() {
    var m = /(?:^#|&)t=([^&]+)/.exec(location.hash);
    if (m) {
      localStorage.setItem(KEY, decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname + location.search);  // out of the address bar and history
    }
    return localStorage.getItem(KEY);
  }

  function Final(code) { this.final = true; this.code = code; this.message = T[code]; }

  async function api(method, path, body) {
    var resp = await fetch(path, {
      method: method, cache: "no-store",
      headers: Object.assign({ "Authorization": "Bearer " + token }, body ? { "Content-Type": "application/json" } : {}),
      body: body ? JSON.stringify(body) : undefined
    });
    if (resp.status === 401) { throw new Final("bad_token"); }
    if (!resp.ok) { throw new Error(path + ": HTTP " + resp.status); }
    return resp.json();
  }

  async function heartbeat() {
    var detail = {};
    if (current) {
      try {
        var c = await current.p.counters();
        detail = { video_frames: c.framesDecoded, audio_packets: c.audioPackets, ice: c.connection, browser: true };
      } catch (e) { detail = { browser: true }; }
    }
    try {
      await api("POST", "/api/v1/agents/heartbeat", {
        agent_version: "kiosk-1", status: current ? "in_meeting" : "idle",
        meeting_id: current ? current.slot.meeting_id : null, detail: detail });
    } catch (err) { if (err.final) { stop(err); } }
  }

  // "HH:MM dd/mm/yyyy" in the meeting's own time zone (the server sends Vietnam time), whatever the PC's zone is.
  function wallTime(iso) {
    var m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(iso);
    return m ? m[4] + ":" + m[5] + " " + m[3] + "/" + m[2] + "/" + m[1] : iso;
  }

  function slotKey(slot) { return slot.meeting_id + "@" + slot.start; }

  async function poll() {
    timer = null;
    if (current) { return; }
    var slots;
    try {
      slots = await api("GET", "/api/v1/agents/meetings");
      backoff = 0;
    } catch (err) {
      if (err.final) { stop(err); return; }
      backoff = Math.min(6, backoff + 1);
      var wait = Math.min(POLL_S, Math.pow(2, backoff));
      say(fmt(T.server_down, { s: Math.ceil(wait) }), "offline");
      timer = setTimeout(poll, wait * 1000);
      return;
    }
    var now = Date.now();
    var next = slots.filter(function (s) { return Date.parse(s.end) > now && !done[slotKey(s)]; })[0];
    if (!next) {
      say(T.no_meeting, "waiting"); $("next-meeting").textContent = "";
      timer = setTimeout(poll, POLL_S * 1000);
      return;
    }
    var opens = Date.parse(next.start) - (next.host ? HOST_LEAD_S * 1000 : 0);
    say(T.waiting, "waiting");
    $("next-meeting").textContent = fmt(T.next_meeting, { title: next.title, start: wallTime(next.start) });
    if (next.join_now || opens <= now) { join(next); return; }
    timer = setTimeout(poll, Math.min(POLL_S * 1000, opens - now));
  }

  function join(slot) {
    $("waiting").hidden = true;
    $("participant").hidden = false;
    $("meeting-title").textContent = slot.title;
    var p = new window.LtJoin.Participant({
      meeting: slot.meeting_id,
      getToken: async function () { return (await api("POST", "/api/v1/meetings/" + slot.meeting_id + "/join-token")).token; },
      getIce: async function () { return (await api("GET", "/api/v1/turn")).iceServers || []; },
      onFinished: function (code) { finished(slot, code); }
    });
    current = { slot: slot, p: p };
    window.ltKiosk.joinedAt = Date.now();
    var left = Date.parse(slot.end) - Date.now();
    endTimer = setTimeout(function () { if (current && current.p === p) { p.leave(); } }, Math.max(0, left));
    p.start();
    heartbeat();
  }

  function finished(slot, code) {
    if (endTimer) { clearTimeout(endTimer); endTimer = null; }
    if (current && current.p.local) { current.p.local.getTracks().forEach(function (t) { t.stop(); }); }
    current = null;
    done[slotKey(slot)] = code;  // removed / ended / refused: never rejoin this occurrence
    setTimeout(function () {     // leave the final message on screen for a moment, then wait for the next one
      $("participant").hidden = true;
      $("waiting").hidden = false;
      heartbeat();
      poll();
    }, 3000);
  }

  function stop(err) {
    if (timer) { clearTimeout(timer); timer = null; }
    say(err.message || T.bad_token, "refused");
  }

  token = takeToken();
  if (!token) { say(T.no_token, "refused"); return; }
  window.ltKiosk = { joinedAt: null, state: function () { return current ? "meeting" : $("waiting").getAttribute("data-state"); } };
  heartbeat();
  setInterval(heartbeat, HEARTBEAT_S * 1000);
  poll();
})();
