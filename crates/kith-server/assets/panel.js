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
