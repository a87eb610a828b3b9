// Kith admin panel: the little plain JavaScript the pages need (no build step).
// Loaded with `defer` from a file (CSP script-src 'self'; no inline script anywhere).
"use strict";

(function () {
  // Every htmx request carries the session's CSRF token as a header; the server refuses
  // state-changing requests without it.
  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  // For scripts of later pages: fetch() against the admin API with the session cookie and
  // the CSRF token.
  // `kith:ready`: the page's controls are live. htmx binds them in its DOMContentLoaded
  // handler, registered before this one (htmx.min.js runs first), so this mark follows it;
  // `kith bench panel` measures navigation → this mark.
  function ready() {
    if (window.performance && performance.mark) performance.mark("kith:ready");
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }

  window.kithPanel = {
    csrfToken: csrfToken,
    fetch: function (url, options) {
      options = options || {};
      options.headers = Object.assign({ "X-CSRF-Token": csrfToken() }, options.headers || {});
      options.credentials = "same-origin";
      return window.fetch(url, options);
    },
  };
})();

// --- Contact detail and conversation pages (panel/contact.rs, panel/conversation.rs) ---
(function () {
  // A refused edit (409 conflict, 422 invalid) answers the form again with its error beside
  // the field: swap it like a success, and do not report it as an htmx error.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (status === 409 || status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // "2026-11-30T06:26:39.123Z" -> "2026-11-30 06:26 UTC", as the server writes times.
  function when(rfc3339) {
    return rfc3339.slice(0, 10) + " " + rfc3339.slice(11, 16) + " UTC";
  }

  var AUTHORS = { visitor: "Visitor", agent: "Agent", bot: "Bot", system: "System" };

  // Appends one message (the API's JSON shape) to the transcript as text, once: the reply
  // answer and the event stream may both bring the same message.
  function appendMessage(list, m) {
    if (!m || !m.id || document.getElementById("m-" + m.id)) return;
    var li = document.createElement("li");
    li.className = "msg " + (AUTHORS[m.author] ? m.author : "system");
    li.id = "m-" + m.id;
    var meta = document.createElement("p");
    meta.className = "msg-meta";
    var who = document.createElement("span");
    who.className = "msg-author";
    who.textContent = AUTHORS[m.author] || "System";
    var time = document.createElement("time");
    time.textContent = when(String(m.created_at || ""));
    meta.appendChild(who);
    meta.appendChild(document.createTextNode(" "));
    meta.appendChild(time);
    var body = document.createElement("p");
    body.className = "msg-body";
    body.textContent = m.body;
    li.appendChild(meta);
    li.appendChild(body);
    list.appendChild(li);
    li.scrollIntoView({ block: "nearest" });
  }

  // The newest messages (oldest first) from the admin API, appended when newer than the last
  // one shown (ids are time-ordered ULIDs): the gap a dropped stream left.
  function catchUp(list, id) {
    var last = "";
    list.querySelectorAll("li.msg[id^='m-']").forEach(function (li) {
      var mid = li.id.slice(2);
      if (mid > last) last = mid;
    });
    return window.kithPanel
      .fetch("/api/v1/conversations/" + encodeURIComponent(id) + "/messages?limit=200")
      .then(function (res) {
        return res.ok ? res.json() : { items: [] };
      })
      .then(function (page) {
        (page.items || []).forEach(function (m) {
          if (m && m.id > last) appendMessage(list, m);
        });
      })
      .catch(function () {
        /* the next reconnect tries again */
      });
  }

  function transcript() {
    return document.getElementById("transcript");
  }

  // The agent's own reply (HX-Trigger: {"kith-message": message}); the form empties.
  document.addEventListener("kith-message", function (event) {
    var list = transcript();
    if (list) appendMessage(list, event.detail);
    var form = document.getElementById("reply-form");
    if (form) form.reset();
    var error = document.getElementById("reply-error");
    if (error) error.textContent = "";
  });

  // New messages of this conversation, live, from the admin event stream (the session
  // cookie is its credential). `data-live="ready"` once the stream is open.
  function listen() {
    var list = transcript();
    if (!list || !list.dataset.conversationId || !window.EventSource) return;
    var id = list.dataset.conversationId;
    var source = new EventSource("/api/v1/events");
    var opened = 0;
    source.addEventListener("ready", function () {
      opened += 1;
      // EventSource reconnects by itself after a drop; whatever arrived meanwhile was not
      // streamed to us, so fetch it (as the widget does), then mark the page live again.
      if (opened > 1) {
        catchUp(list, id).then(function () {
          list.dataset.live = "ready";
          list.dataset.reconnects = String(opened - 1);
        });
      } else {
        list.dataset.live = "ready";
      }
    });
    source.addEventListener("error", function () {
      list.dataset.live = "reconnecting";
    });
    source.addEventListener("message", function (event) {
      var data;
      try {
        data = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (data.conversation_id === id) appendMessage(list, data.message);
    });
    window.addEventListener("pagehide", function () {
      source.close();
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", listen);
  } else {
    listen();
  }
})();
