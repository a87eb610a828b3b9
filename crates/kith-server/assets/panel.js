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
    source.addEventListener("ready", function () {
      list.dataset.live = "ready";
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
