// The agent console's script: live parts and the canned-reply picker. The pages work without
// it (every action is a plain form); it only refreshes what the server already drew.
//
// A page whose <body> has data-live="<url>" polls that URL every two seconds; the JSON's
// "parts" maps a data-part name to the inner HTML the server rendered (and escaped) for it.
// 401 means the session ended: off to the login form. The queue's title counts the waiting
// conversations, so a console in a background tab still shows that someone is waiting.
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
            var atBottom = element.scrollHeight - element.scrollTop - element.clientHeight < 40;
            element.innerHTML = data.parts[name];
            if (atBottom) element.scrollTop = element.scrollHeight;
          }
        });
        if (typeof data.waiting === "number") {
          document.title = (data.waiting ? "(" + data.waiting + ") " : "") + baseTitle;
        }
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

  var baseTitle = document.title;

  document.addEventListener("DOMContentLoaded", function () {
    baseTitle = document.title;
    picker();
    var transcript = document.getElementById("transcript");
    if (transcript) transcript.scrollTop = transcript.scrollHeight;
    var url = document.body.getAttribute("data-live");
    if (url) window.setTimeout(function () { refresh(url); }, POLL_MS);
  });
})();
