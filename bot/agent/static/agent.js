// The agent console's script: live parts and the canned-reply picker. The pages work without
// it (every action is a plain form); it only refreshes what the server already drew.
//
// A page whose <body> has data-live="<url>" polls that URL every two seconds; the JSON's
// "parts" maps a data-part name to the inner HTML the server rendered (and escaped) for it.
// 401 means the session ended: off to the login form.
(function () {
  "use strict";
  var POLL_MS = 2000;

  function refresh(url) {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) {
        if (response.status === 401) {
          window.location.assign("/agent/login");
          return null;
        }
        return response.ok ? response.json() : null;
      })
      .then(function (data) {
        if (!data || !data.parts) return;
        Object.keys(data.parts).forEach(function (name) {
          var element = document.querySelector('[data-part="' + name + '"]');
          if (element && element.innerHTML !== data.parts[name]) {
            element.innerHTML = data.parts[name];
          }
        });
        document.body.setAttribute("data-updated", String(Date.now()));
      })
      .catch(function () { /* offline for a moment: the next poll tries again */ })
      .then(function () { window.setTimeout(function () { refresh(url); }, POLL_MS); });
  }

  function picker() {
    var select = document.getElementById("canned");
    if (!select) return;
    select.addEventListener("change", function () {
      var option = select.options[select.selectedIndex];
      var target = document.getElementById(select.getAttribute("data-fills"));
      if (option && option.value && target) {
        target.value = option.getAttribute("data-text") || "";
        target.focus();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    picker();
    var url = document.body.getAttribute("data-live");
    if (url) window.setTimeout(function () { refresh(url); }, POLL_MS);
  });
})();
