/* The demo page's form: asks this server for a demo user's hash, then identifies through the
 * widget's command API exactly as a real website would. */
(function () {
  "use strict";
  // The widget loads asynchronously: calls made before it arrives queue here and replay.
  window.Kith = window.Kith || function () { (window.Kith.q = window.Kith.q || []).push(arguments); };
  var form = document.getElementById("identify");
  var status = document.getElementById("status");
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var userId = form.user_id.value.trim();
    fetch("/demo/identify", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user_id: userId })
    }).then(function (res) {
      return res.json().then(function (d) {
        if (!res.ok) throw new Error(d.error ? d.error.message : "HTTP " + res.status);
        return d;
      });
    }).then(function (d) {
      var payload = { user_id: d.user_id, user_hash: d.user_hash };
      if (form.name.value.trim()) payload.name = form.name.value.trim();
      if (form.email.value.trim()) payload.email = form.email.value.trim();
      return Kith("identify", payload);
    }).then(function () {
      status.textContent = "Identified as " + userId + ".";
    }, function (e) {
      status.textContent = "Could not identify: " + e.message;
    });
  });
  document.getElementById("reset").addEventListener("click", function () {
    Kith("reset");
    status.textContent = "A new visitor: the earlier conversations are gone from this page.";
  });
})();
