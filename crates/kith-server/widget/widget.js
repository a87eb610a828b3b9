/* Kith chat widget. Hand-written, no dependencies, served as is by `kith serve` at /widget.js.
 * Install: <script src="https://KITH/widget.js" data-website="WEBSITE_KEY" async></script>
 * Command API (calls made before this script loads are queued by the snippet and replayed):
 *   Kith('identify', {user_id, email, user_hash, name, phone, company, metadata})
 *   Kith('open') · Kith('close') · Kith('reset') · Kith('on', 'message' | 'ready', fn)
 * Everything the page shows from the server is set as text (textContent), never as HTML. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__kithLoaded) return;
  window.__kithLoaded = true;
  var KEY = script.getAttribute("data-website") || "";
  var BASE = new URL(script.src, location.href).origin;
  var API = BASE + "/api/widget/v1";
  // Cookie names may not hold every character; website keys are [a-z0-9_].
  var NAME = "kith_" + KEY.replace(/[^A-Za-z0-9_]/g, "");
  var OUTBOX = NAME + "_outbox";

  // ---- storage on the host page's own site (first-party) ----
  function getCookie(name) {
    var m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : null;
  }
  function setCookie(name, value, maxAge) {
    document.cookie = name + "=" + encodeURIComponent(value) + "; path=/; max-age=" + maxAge +
      "; samesite=lax" + (location.protocol === "https:" ? "; secure" : "");
  }
  function store(key, value) {
    try {
      if (value === null) localStorage.removeItem(key);
      else localStorage.setItem(key, JSON.stringify(value));
    } catch (e) { /* storage may be blocked; the widget still works for this page */ }
  }
  function load(key) {
    try { return JSON.parse(localStorage.getItem(key) || "null"); } catch (e) { return null; }
  }

  var token = getCookie(NAME);
  var conversationId = null;
  var seen = {};
  var outbox = load(OUTBOX) || [];
  var listeners = { message: [], ready: [] };
  var source = null;
  var opened = false;
  var retryDelay = 1000;
  var retryTimer = null;

  function emit(kind, value) {
    listeners[kind].forEach(function (fn) {
      try { fn(value); } catch (e) { setTimeout(function () { throw e; }); }
    });
  }

  function call(method, path, body, extra) {
    var headers = { "X-Kith-Website": KEY };
    if (token) headers["X-Kith-Visitor"] = token;
    if (body) headers["Content-Type"] = "application/json";
    for (var h in extra || {}) headers[h] = extra[h];
    // The key rides in the query too, so the browser's preflight names the website and Kith
    // can answer it with that website's allowed origins.
    var url = API + path + (path.indexOf("?") < 0 ? "?" : "&") + "website_key=" + encodeURIComponent(KEY);
    var mine = person;
    // An answer (or failure) that arrives after a reset belongs to the person before it: it
    // never settles, so no caller paints it for whoever uses the browser next.
    var stale = function () { return mine !== person ? new Promise(function () {}) : null; };
    return fetch(url, {
      method: method, headers: headers, body: body ? JSON.stringify(body) : undefined,
      credentials: "omit", mode: "cors"
    }).then(function (res) {
      return stale() || res.json().catch(function () { return {}; }).then(function (data) {
        if (!res.ok) {
          var err = new Error((data.error && data.error.message) || ("HTTP " + res.status));
          err.status = res.status;
          throw err;
        }
        return data;
      });
    }, function (e) {
      return stale() || Promise.reject(e);
    });
  }

  // A visitor token exists only once the visitor opens the chat or the app identifies: a page
  // view alone writes nothing anywhere (SPEC: page views write nothing).
  function ensureToken() {
    if (token) return Promise.resolve(token);
    return call("POST", "/session", {}).then(function (d) {
      token = d.visitor_token;
      setCookie(NAME, token, 31536000);
      connect();
      return token;
    });
  }

  // ---- the interface, in an open shadow root so the host page's CSS cannot reach it ----
  var CSS =
    ":host{all:initial}" +
    "*{box-sizing:border-box;font:14px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0}" +
    ".launcher{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;" +
    "background:#3b5bdb;color:#fff;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);display:flex;" +
    "align-items:center;justify-content:center;z-index:2147483647}" +
    ".launcher svg{width:26px;height:26px;fill:currentColor}" +
    ".badge{position:absolute;top:-2px;right:-2px;min-width:18px;height:18px;border-radius:9px;" +
    "background:#e03131;color:#fff;font-size:11px;line-height:18px;text-align:center;padding:0 4px}" +
    ".panel{position:fixed;right:20px;bottom:88px;width:360px;max-width:calc(100vw - 40px);height:520px;" +
    "max-height:calc(100vh - 120px);background:#fff;color:#1f2328;border-radius:12px;display:flex;" +
    "flex-direction:column;overflow:hidden;box-shadow:0 8px 30px rgba(0,0,0,.25);z-index:2147483647;" +
    "transition:opacity .15s,transform .15s}" +
    ".panel[hidden]{display:none}" +
    "header{display:flex;align-items:center;justify-content:space-between;padding:12px 14px;" +
    "background:#3b5bdb;color:#fff}" +
    "header h2{font-weight:600;font-size:15px;color:inherit}" +
    "button{cursor:pointer}" +
    ".human{background:rgba(255,255,255,.18);color:#fff;border:0;border-radius:6px;padding:5px 9px;font-size:12px}" +
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:6px;background:#f8f9fa}" +
    ".msg{max-width:80%;padding:8px 11px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word}" +
    ".visitor{align-self:flex-end;background:#3b5bdb;color:#fff}" +
    ".agent,.bot{align-self:flex-start;background:#e9ecef;color:#1f2328}" +
    ".system{align-self:center;color:#6b7280;font-size:12px}" +
    ".pending{opacity:.6}.failed{background:#fff5f5;color:#c92a2a;border:1px solid #ffc9c9}" +
    ".empty{color:#6b7280;text-align:center;margin:auto}" +
    "form{display:flex;gap:8px;padding:10px;border-top:1px solid #e5e7eb;background:#fff}" +
    "textarea{flex:1;resize:none;border:1px solid #ced4da;border-radius:8px;padding:8px;height:40px;color:#1f2328;background:#fff}" +
    ".send{border:0;border-radius:8px;background:#3b5bdb;color:#fff;padding:0 14px;font-weight:600}" +
    "button:focus-visible,textarea:focus-visible{outline:3px solid #ffa94d;outline-offset:2px}" +
    "@media (prefers-reduced-motion:reduce){.panel{transition:none}}";

  var host = document.createElement("div");
  host.setAttribute("data-kith", "");
  var root = host.attachShadow({ mode: "open" });
  if (root.adoptedStyleSheets !== undefined && window.CSSStyleSheet && CSSStyleSheet.prototype.replaceSync) {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } else {
    var style = document.createElement("style");
    style.textContent = CSS;
    root.appendChild(style);
  }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var a in attrs || {}) e.setAttribute(a, attrs[a]);
    if (text) e.textContent = text;
    return e;
  }

  var launcher = el("button", { "class": "launcher", type: "button", "aria-label": "Open chat", "aria-expanded": "false" });
  // Built as nodes, not markup: pages with Trusted Types refuse innerHTML.
  var SVG = "http://www.w3.org/2000/svg";
  var icon = document.createElementNS(SVG, "svg");
  icon.setAttribute("viewBox", "0 0 24 24");
  icon.setAttribute("aria-hidden", "true");
  var path = document.createElementNS(SVG, "path");
  path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z");
  icon.appendChild(path);
  launcher.appendChild(icon);
  var badge = el("span", { "class": "badge", hidden: "" });
  launcher.appendChild(badge);
  var panel = el("div", { "class": "panel", role: "dialog", "aria-label": "Chat", hidden: "" });
  var header = el("header");
  header.appendChild(el("h2", null, "Chat with us"));
  var human = el("button", { "class": "human", type: "button" }, "Talk to a human");
  header.appendChild(human);
  var log = el("div", { "class": "log", role: "log", "aria-live": "polite", "aria-label": "Messages" });
  var form = el("form");
  var input = el("textarea", { "aria-label": "Message", placeholder: "Write a message…", rows: "1", maxlength: "10000" });
  var send = el("button", { "class": "send", type: "submit" }, "Send");
  form.appendChild(input);
  form.appendChild(send);
  panel.appendChild(header);
  panel.appendChild(log);
  panel.appendChild(form);
  root.appendChild(panel);
  root.appendChild(launcher);

  var unread = 0;
  function setUnread(n) {
    unread = n;
    badge.textContent = String(n);
    if (n > 0) badge.removeAttribute("hidden"); else badge.setAttribute("hidden", "");
  }

  function showEmpty() {
    if (!log.querySelector(".msg")) {
      log.textContent = "";
      log.appendChild(el("p", { "class": "empty" }, "Ask us anything — we usually answer in a few minutes."));
    }
  }

  function render(m, state) {
    var empty = log.querySelector(".empty");
    if (empty) empty.remove();
    var node = m.id && log.querySelector('[data-id="' + m.id + '"]');
    if (!node && m.key) node = log.querySelector('[data-key="' + m.key + '"]');
    if (!node) {
      node = el("p");
      log.appendChild(node);
    }
    node.className = "msg " + (m.author || "visitor") + (state ? " " + state : "");
    if (m.id) node.setAttribute("data-id", m.id);
    if (m.key) node.setAttribute("data-key", m.key);
    node.textContent = m.body;
    if (state === "failed") node.textContent = m.body + " — not sent: " + m.error;
    log.scrollTop = log.scrollHeight;
  }

  function note(text) {
    log.appendChild(el("p", { "class": "msg system" }, text));
    log.scrollTop = log.scrollHeight;
  }

  function receive(m) {
    if (seen[m.id]) return;
    seen[m.id] = true;
    if (!conversationId) conversationId = m.conversation_id;
    if (m.conversation_id !== conversationId) return;
    render(m);
    if (m.author !== "visitor") {
      emit("message", { id: m.id, body: m.body, author: m.author, conversation_id: m.conversation_id, created_at: m.created_at });
      if (!opened) setUnread(unread + 1);
    }
  }

  // The visitor's newest conversation and its latest messages; also what fills a gap after
  // the live stream was cut (replies sent meanwhile arrive here, once, by id).
  function sync() {
    if (!token) return Promise.resolve();
    var pick = conversationId
      ? Promise.resolve(conversationId)
      : call("GET", "/conversations?limit=1").then(function (d) {
        return d.items && d.items[0] ? d.items[0].id : null;
      });
    return pick.then(function (id) {
      if (!id) { showEmpty(); return; }
      conversationId = id;
      return call("GET", "/conversations/" + encodeURIComponent(id) + "/messages?limit=50").then(function (d) {
        // The server's order is the truth: redraw from it, then what is still unsent.
        log.textContent = "";
        seen = {};
        d.items.forEach(function (m) { seen[m.id] = true; render(m); });
        outbox.forEach(function (item) {
          render({ key: item.key, body: item.body, author: "visitor" }, "pending");
        });
      });
    }).catch(function (e) {
      if (e.status === 401) forget();
    });
  }

  // ---- live replies over Server-Sent Events; EventSource reconnects by itself ----
  var connections = 0;
  function connect() {
    if (!token || source || typeof EventSource === "undefined") return;
    var url = API + "/events?website_key=" + encodeURIComponent(KEY) + "&visitor_token=" + encodeURIComponent(token);
    var es = new EventSource(url);
    source = es;
    es.addEventListener("ready", function () {
      // Every connection after the first may have missed messages: fetch them.
      if (connections++ > 0) sync();
    });
    es.addEventListener("message", function (ev) {
      try { receive(JSON.parse(ev.data)); } catch (e) { /* a malformed event is skipped */ }
    });
    es.onerror = function () {
      if (es.readyState === 2 && source === es) {
        // Refused (e.g. 429) rather than cut: try again later, ourselves.
        source = null;
        setTimeout(connect, 5000);
      }
    };
  }
  function disconnect() {
    if (source) source.close();
    source = null;
    connections = 0;
  }

  // ---- sending: every message goes through the outbox (kept in storage) until the server
  // has it; the same Idempotency-Key on every retry means a lost answer never duplicates ----
  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  function flush() {
    clearTimeout(retryTimer);
    if (!outbox.length) return;
    var item = outbox[0];
    ensureToken().then(function () {
      var body = { body: item.body };
      if (item.conversation_id || conversationId) body.conversation_id = item.conversation_id || conversationId;
      return call("POST", "/messages", body, { "Idempotency-Key": item.key });
    }).then(function (d) {
      outbox.shift();
      store(OUTBOX, outbox);
      conversationId = d.conversation_id;
      // Whose chat this is now: an identify that lands elsewhere is another person.
      store(NAME + "_contact", d.contact_id);
      seen[d.message_id] = true;
      render({ id: d.message_id, key: item.key, body: item.body, author: "visitor" });
      retryDelay = 1000;
      flush();
    }, function (e) {
      if (e.status && e.status < 500 && e.status !== 429 && e.status !== 401) {
        // The server refused this message for good (e.g. too long): say so, keep the rest.
        outbox.shift();
        store(OUTBOX, outbox);
        render({ key: item.key, body: item.body, author: "visitor", error: e.message }, "failed");
        flush();
        return;
      }
      if (e.status === 401) forget();
      retryTimer = setTimeout(flush, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30000);
    });
  }

  function submit(text) {
    var body = text.trim();
    if (!body) return;
    var item = { key: newKey(), body: body, conversation_id: conversationId };
    outbox.push(item);
    store(OUTBOX, outbox);
    render({ key: item.key, body: body, author: "visitor" }, "pending");
    flush();
  }

  window.addEventListener("online", function () { retryDelay = 1000; flush(); });

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    submit(input.value);
    input.value = "";
    input.focus();
  });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey) {
      ev.preventDefault();
      form.requestSubmit ? form.requestSubmit() : submit(input.value);
    }
  });
  human.addEventListener("click", function () {
    if (!conversationId) { note("Write your question first, and a human will pick it up."); return; }
    call("POST", "/conversations/" + encodeURIComponent(conversationId) + "/escalate")
      .then(function () { note("We've asked a human to join this conversation."); },
        function (e) { note("Could not reach a human: " + e.message); });
  });

  function open() {
    if (opened) return;
    opened = true;
    panel.removeAttribute("hidden");
    launcher.setAttribute("aria-label", "Close chat");
    launcher.setAttribute("aria-expanded", "true");
    setUnread(0);
    input.focus();
    ensureToken().then(sync).then(flush).catch(function (e) { note("Chat is unavailable: " + e.message); });
  }
  function close() {
    if (!opened) return;
    opened = false;
    panel.setAttribute("hidden", "");
    launcher.setAttribute("aria-label", "Open chat");
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }
  launcher.addEventListener("click", function () { opened ? close() : open(); });
  panel.addEventListener("keydown", function (ev) { if (ev.key === "Escape") close(); });

  // ---- identity ----
  function hash(s) {
    var h = 0x811c9dc5;
    for (var i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193); }
    return (h >>> 0).toString(16);
  }
  function canonical(v) {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      return "{" + Object.keys(v).sort().map(function (k) { return JSON.stringify(k) + ":" + canonical(v[k]); }).join(",") + "}";
    }
    return JSON.stringify(v === undefined ? null : v);
  }
  var identifying = Promise.resolve();
  function identify(payload) {
    payload = payload || {};
    identifying = identifying.then(ensureToken).then(function () {
      // Apps identify on every page; only a changed payload goes to the server.
      var sum = hash(token + canonical(payload));
      if (getCookie(NAME + "_id") === sum) return;
      var before = load(NAME + "_contact");
      return call("POST", "/identify", payload).then(function (d) {
        setCookie(NAME + "_id", sum, 31536000);
        store(NAME + "_contact", d.contact_id || null);
        // The visitor now belongs to another contact (another user logged in on this browser,
        // whether named by user_id or inside an identity_token; or a merge): nothing of what
        // the page showed stays, and the live stream starts again for the new contact.
        if (before && (d.contact_id || null) !== before) {
          // Another person on this browser: nothing of the previous one stays on the page.
          disconnect();
          conversationId = null;
          seen = {};
          log.textContent = "";
          connect();
          if (opened) sync();
        }
      });
    }).catch(function (e) {
      if (window.console) console.warn("Kith identify failed: " + e.message);
    });
    return identifying;
  }

  // Bumped by a reset: `call` drops answers to requests made before it (a shared computer).
  var person = 0;
  function forget() {
    person++;
    disconnect();
    token = null;
    conversationId = null;
    seen = {};
    outbox = [];
    store(OUTBOX, null);
    store(NAME + "_contact", null);
    setCookie(NAME, "", 0);
    setCookie(NAME + "_id", "", 0);
    log.textContent = "";
    setUnread(0);
    if (opened) showEmpty();
  }

  var commands = {
    identify: identify,
    open: open,
    close: close,
    reset: forget,
    on: function (kind, fn) {
      if (listeners[kind] && typeof fn === "function") {
        listeners[kind].push(fn);
        if (kind === "ready" && ready) fn();
      }
    }
  };
  var ready = false;
  function Kith(name) {
    var cmd = commands[name];
    if (!cmd) { if (window.console) console.warn("Kith: unknown command " + name); return; }
    return cmd.apply(null, Array.prototype.slice.call(arguments, 1));
  }

  function start() {
    document.body.appendChild(host);
    var queued = (window.Kith && window.Kith.q) || [];
    window.Kith = Kith;
    for (var i = 0; i < queued.length; i++) Kith.apply(null, queued[i]);
    // A returning visitor (token in the cookie) hears replies live and gets unsent messages
    // out; a new one costs nothing until it opens the chat.
    if (token) {
      connect();
      sync().then(flush);
    }
    ready = true;
    emit("ready");
  }
  if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
})();
