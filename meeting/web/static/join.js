// The browser participant: camera/mic, one RTCPeerConnection to our SFU, the signaling WebSocket (docs/media.md).
// Used by /join/{token} (LtJoin.fromPath) and by the kiosk page (kiosk.js). Plain JS, no CDN, no build step.
// ICE servers are ALWAYS explicit: our coturn or none — a browser's default would not be used anyway, but we never
// leave it to chance (DESIGN §9).
(function () {
  "use strict";
  var cfgEl = document.getElementById("lt-config");
  var CFG = cfgEl ? JSON.parse(cfgEl.textContent) : {};
  var T = CFG.texts || {};
  var FINAL_CODES = { 4403: "refused", 4404: "refused", 4409: "replaced", 4410: "ended", 4412: "removed", 4413: "ended" };
  var THUMB_W = 160, THUMB_H = 90, THUMB_MAX = 12 * 1024;

  function fmt(text, params) {
    return String(text || "").replace(/\{(\w+)\}/g, function (m, k) { return params && k in params ? params[k] : m; });
  }
  function $(id) { return document.getElementById(id); }
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
  function english() { return (document.documentElement.lang || "vi").indexOf("en") === 0; }

  function Participant(opts) {
    this.meeting = opts.meeting;
    this.getToken = opts.getToken;         // () => Promise<string>; rejects with {code: "..."} when impossible
    this.getIce = opts.getIce;             // () => Promise<RTCIceServer[]>
    this.fixedToken = !!opts.fixedToken;   // the /join link: no new token after expiry
    this.onFinished = opts.onFinished || function () {};
    this.ws = null; this.pc = null; this.local = null; this.remote = null;
    this.floor = false; this.host = false; this.muted = false; this.raised = false;
    this.finished = false; this.attempt = 0; this.thumbTimer = null; this.pingTimer = null;
    this.rehearsalUntil = 0; this.connectedOnce = false;
    window.ltParticipant = this;  // tests and the curious read getStats() through it
  }

  Participant.prototype.status = function (text, state) {
    var el = $("status"); if (el) { el.textContent = text; }
    var root = $("participant"); if (root && state) { root.setAttribute("data-state", state); }
  };
  Participant.prototype.notice = function (text) {
    var el = $("notice"); if (!el) { return; }
    el.textContent = text || ""; el.hidden = !text;
  };

  Participant.prototype.start = async function () {
    var self = this;
    this.status(T.connecting, "connecting");
    var hand = $("hand");
    if (hand) { hand.onclick = function () { self.raiseHand(!self.raised); }; }
    var audioBtn = $("audio-btn");
    if (audioBtn) { audioBtn.onclick = function () { audioBtn.hidden = true; $("remote").play(); }; }
    try {
      this.local = await navigator.mediaDevices.getUserMedia({
        audio: true, video: { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 15 } } });
      var me = $("self"); if (me) { me.srcObject = this.local; }
    } catch (err) {
      this.local = null;
      this.notice(fmt(T.no_camera, { error: (err && err.name) || String(err) }));
    }
    this.connect();
  };

  Participant.prototype.connect = async function () {
    var self = this;
    if (this.finished) { return; }
    var token, ice;
    try {
      token = await this.getToken();
      ice = await this.getIce();
    } catch (err) {
      if (err && err.final) { this.finish(err.code, err.message); return; }
      this.retry(); return;
    }
    var url = (location.protocol === "https:" ? "wss:" : "ws:") + "//" + location.host + "/ws/meetings/" + this.meeting;
    var ws = this.ws = new WebSocket(url);
    ws.onopen = function () { ws.send(JSON.stringify({ type: "auth", token: token })); };
    ws.onmessage = function (ev) {
      var msg; try { msg = JSON.parse(ev.data); } catch (e) { return; }
      self.onMessage(msg, ice).catch(function (e) { console.warn("lt: message", msg.type, e); });
    };
    ws.onclose = function (ev) { self.onClose(ws, ev.code); };
    this.pingTimer = setInterval(function () { self.send({ type: "ping" }); }, 20000);
  };

  Participant.prototype.send = function (msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) { this.ws.send(JSON.stringify(msg)); }
  };

  Participant.prototype.onMessage = async function (msg, ice) {
    var t = msg.type;
    if (t === "welcome") {
      this.host = !!msg.host;
      await this.openPeer(ice);
    } else if (t === "answer") {
      await this.pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
    } else if (t === "floor") {
      await this.setFloor(!!msg.granted);
    } else if (t === "mute") {
      this.muted = !!msg.muted; this.applyMute();
      this.notice(this.muted ? T.muted : "");
    } else if (t === "hand") {
      this.showHand(!!msg.raised);
    } else if (t === "video") {
      this.notice(msg.mode === "audio-only" ? T.audio_only : "");
    } else if (t === "thumbs") {
      this.thumbs(Number(msg.interval_s) || 0);
    } else if (t === "rehearsal") {
      this.rehearse(Number(msg.seconds) || 5);
    } else if (t === "error") {
      if (msg.code === "removed" || msg.code === "ended") { this.finalCode = msg.code; }
      else if ((msg.code === "expired_token" || msg.code === "invalid_token") && this.fixedToken) { this.finalCode = "expired"; }
      else if (msg.code === "site_token_revoked") { this.finalCode = "bad_token"; }
      else { this.notice(english() ? (msg.reason_en || msg.reason) : msg.reason); }
    }
  };

  Participant.prototype.openPeer = async function (ice) {
    var self = this;
    this.closePeer();
    var pc = this.pc = new RTCPeerConnection({ iceServers: ice || [], bundlePolicy: "max-bundle" });
    this.audioTx = pc.addTransceiver("audio", { direction: "sendrecv" });
    this.videoTx = pc.addTransceiver("video", { direction: "sendrecv" });
    this.remote = new MediaStream();
    var video = $("remote");
    pc.ontrack = function (ev) {
      self.remote.addTrack(ev.track);
      if (video) {
        video.srcObject = self.remote;
        video.play().catch(function () { var b = $("audio-btn"); if (b) { b.hidden = false; } });
      }
    };
    pc.onconnectionstatechange = function () {
      if (pc !== self.pc) { return; }
      if (pc.connectionState === "connected") {
        self.attempt = 0; self.connectedOnce = true;
        self.status(self.floor ? T.floor_on : (T.connected + " · " + T.floor_off), "connected");
      } else if (pc.connectionState === "failed") {
        if (self.ws) { self.ws.close(); }  // onClose reconnects
      }
    };
    var sent = false;
    pc.onicecandidate = function (ev) {  // late candidates trickle after the offer (the SFU accepts them)
      if (sent && ev.candidate && ev.candidate.candidate) {
        self.send({ type: "candidate", candidate: ev.candidate.candidate, sdpMid: ev.candidate.sdpMid,
                    sdpMLineIndex: ev.candidate.sdpMLineIndex });
      }
    };
    if (this.host) { await this.setFloor(true); }
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise(function (resolve) {  // gather first (≤ 2 s): one offer with its candidates
      if (pc.iceGatheringState === "complete") { resolve(); return; }
      var done = function () { if (pc.iceGatheringState === "complete") { resolve(); } };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, 2000);
    });
    this.send({ type: "offer", sdp: pc.localDescription.sdp });
    sent = true;
  };

  Participant.prototype.sending = function () {
    return this.host || this.floor || Date.now() < this.rehearsalUntil;
  };

  Participant.prototype.applyTracks = async function () {
    if (!this.pc || !this.local) { return; }
    var on = this.sending();
    var a = this.local.getAudioTracks()[0] || null, v = this.local.getVideoTracks()[0] || null;
    await this.audioTx.sender.replaceTrack(on ? a : null);
    await this.videoTx.sender.replaceTrack(on ? v : null);
    this.applyMute();
  };

  Participant.prototype.applyMute = function () {
    if (!this.local) { return; }
    this.local.getAudioTracks().forEach(function (tr) { tr.enabled = !this.muted; }, this);
  };

  Participant.prototype.setFloor = async function (granted) {
    this.floor = granted;
    await this.applyTracks();
    if (this.pc && this.pc.connectionState === "connected") {
      this.status(granted ? T.floor_on : (T.connected + " · " + T.floor_off), "connected");
    }
    var root = $("participant"); if (root) { root.setAttribute("data-floor", granted ? "1" : "0"); }
    if (granted) { this.showHand(false); }
  };

  Participant.prototype.raiseHand = function (raised) {
    this.send({ type: "hand", raised: raised });
    this.showHand(raised);
  };

  Participant.prototype.showHand = function (raised) {
    this.raised = raised;
    var b = $("hand"); if (!b) { return; }
    b.setAttribute("data-raised", raised ? "1" : "0");
    b.textContent = raised ? T.hand_down : T.hand_up;
    if (raised) { this.notice(T.hand_raised); } else if ($("notice") && $("notice").textContent === T.hand_raised) { this.notice(""); }
  };

  // Rehearsal: publish camera + microphone for N seconds, then report what arrived from the hall meanwhile.
  Participant.prototype.rehearse = async function (seconds) {
    var before = await this.counters();
    this.rehearsalUntil = Date.now() + seconds * 1000;
    await this.applyTracks();
    await sleep(seconds * 1000);
    this.rehearsalUntil = 0;
    await this.applyTracks();
    var after = await this.counters();
    this.send({ type: "rehearsal-report", video_frames: after.framesDecoded - before.framesDecoded,
                audio_packets: after.audioPackets - before.audioPackets });
  };

  // Hall wall: a 160×90 JPEG of our own camera every interval (0 = stop), ≤ 12 KB.
  Participant.prototype.thumbs = function (interval) {
    var self = this;
    if (this.thumbTimer) { clearInterval(this.thumbTimer); this.thumbTimer = null; }
    if (!(interval > 0) || !this.local || !this.local.getVideoTracks().length) { return; }
    var canvas = document.createElement("canvas");
    canvas.width = THUMB_W; canvas.height = THUMB_H;
    this.thumbTimer = setInterval(function () {
      var src = $("self");
      if (!src || src.readyState < 2) { return; }
      canvas.getContext("2d").drawImage(src, 0, 0, THUMB_W, THUMB_H);
      var data = null;
      for (var q = 0.7; q >= 0.3; q -= 0.2) {
        data = canvas.toDataURL("image/jpeg", q).split(",")[1];
        if (data.length * 3 / 4 <= THUMB_MAX) { break; }
        data = null;
      }
      if (data) { self.send({ type: "thumb", jpeg: data }); }
    }, interval * 1000);
  };

  // What this page received and sent (inbound video frames decoded, audio packets; outbound frames encoded).
  Participant.prototype.counters = async function () {
    var out = { framesDecoded: 0, audioPackets: 0, framesEncoded: 0, bytesSent: 0, connection: "none" };
    if (!this.pc) { return out; }
    out.connection = this.pc.connectionState;
    var report = await this.pc.getStats();
    report.forEach(function (s) {
      if (s.type === "inbound-rtp" && s.kind === "video") { out.framesDecoded += s.framesDecoded || 0; }
      if (s.type === "inbound-rtp" && s.kind === "audio") { out.audioPackets += s.packetsReceived || 0; }
      if (s.type === "outbound-rtp" && s.kind === "video") {
        out.framesEncoded += s.framesEncoded || 0; out.bytesSent += s.bytesSent || 0;
      }
    });
    return out;
  };

  Participant.prototype.closePeer = function () {
    if (this.pc) { try { this.pc.close(); } catch (e) { /* already closed */ } }
    this.pc = null;
  };

  Participant.prototype.cleanup = function () {
    this.closePeer();
    if (this.thumbTimer) { clearInterval(this.thumbTimer); this.thumbTimer = null; }
    if (this.pingTimer) { clearInterval(this.pingTimer); this.pingTimer = null; }
  };

  Participant.prototype.onClose = function (ws, code) {
    if (ws !== this.ws) { return; }
    this.cleanup();
    if (this.finished) { return; }
    var final = this.finalCode || FINAL_CODES[code];
    if (code === 4401 && this.fixedToken) { final = "expired"; }
    if (final) { this.finish(final); return; }
    this.retry();
  };

  Participant.prototype.retry = function () {
    var self = this;
    var d = Math.min(10, 0.5 * Math.pow(2, this.attempt)); this.attempt += 1;
    d = d / 2 + Math.random() * d / 2;
    this.status(fmt(T.reconnecting, { s: Math.ceil(d) }), "reconnecting");
    setTimeout(function () { self.connect(); }, d * 1000);
  };

  // Ends this participation for good: removed, meeting ended, link expired, refused — no rejoin.
  Participant.prototype.finish = function (code, message) {
    if (this.finished) { return; }
    this.finished = true;
    this.cleanup();
    this.status(message || T[code] || code, code);
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) { this.ws.close(); }
    this.onFinished(code);
  };

  // The kiosk ends its meeting at the scheduled end: say goodbye, release the camera.
  Participant.prototype.leave = function () {
    this.send({ type: "leave" });
    this.finish("ended");
    if (this.local) { this.local.getTracks().forEach(function (tr) { tr.stop(); }); this.local = null; }
  };

  function fromPath() {
    var lang = $("lang-switch");  // the language cookie without putting this page's path (the token) in a URL
    if (lang) {
      lang.onclick = function (ev) {
        ev.preventDefault();
        fetch("/lang/" + lang.getAttribute("data-lang") + "?next=/", { credentials: "same-origin", redirect: "manual" })
          .then(function () { location.reload(); });
      };
    }
    var token = decodeURIComponent(location.pathname.replace(/^\/join\//, ""));
    var p = new Participant({
      meeting: CFG.meeting, fixedToken: true,
      getToken: function () { return Promise.resolve(token); },
      getIce: function () { return Promise.resolve(CFG.ice_servers || []); }
    });
    p.start();
    return p;
  }

  window.LtJoin = { Participant: Participant, fromPath: fromPath, fmt: fmt, config: CFG, texts: T };
})();
