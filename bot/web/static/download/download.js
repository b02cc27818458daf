// The certificate download page (bot/web/download.py): a refinement of what the server renders.
// Without it the page works the same; every check here is made again by the server.
// - the export password is checked as typed (twice alike, the rule from the input's `pattern`,
//   which the server takes from certcore.pki.EXPORT_PASSWORD), with the server's own words;
// - on Windows 10 the browser's client hints tell versions before 1709 (platformVersion < 5),
//   which need the compatible file, apart from later ones;
// - while the certificate is made, the button is disabled (no double submit) and the page asks
//   the server for the delivery's state, to say when the download has started.
(function () {
  "use strict";

  var form = document.getElementById("download-form");
  if (!form) {
    return;
  }
  var errorBox = document.getElementById("form-error");
  var working = document.getElementById("working");
  var after = document.getElementById("after");
  var password = form.elements.namedItem("password");
  var confirmation = form.elements.namedItem("password_confirm");
  var rule = new RegExp("^(?:" + password.getAttribute("pattern") + ")$");
  var formatTouched = form.getAttribute("data-chosen") === "yes";

  function showErrors(messages) {
    while (errorBox.firstChild) {
      errorBox.removeChild(errorBox.firstChild);
    }
    var title = document.createElement("h2");
    title.textContent = form.getAttribute("data-error-title");
    errorBox.appendChild(title);
    messages.forEach(function (message) {
      var line = document.createElement("p");
      line.textContent = message;
      errorBox.appendChild(line);
    });
    errorBox.hidden = false;
    password.setAttribute("aria-invalid", "true");
    confirmation.setAttribute("aria-invalid", "true");
    errorBox.focus();
  }

  form.addEventListener("change", function (event) {
    if (event.target && event.target.name === "format") {
      formatTouched = true;
    }
  });

  form.addEventListener("submit", function (event) {
    var messages = [];
    if (password.value !== confirmation.value) {
      messages.push(form.getAttribute("data-error-mismatch"));
    } else if (!rule.test(password.value)) {
      messages.push(form.getAttribute("data-error-invalid"));
    }
    if (messages.length) {
      event.preventDefault();
      password.value = "";
      confirmation.value = "";
      showErrors(messages);
      return;
    }
    errorBox.hidden = true;
    working.hidden = false;
    var button = form.querySelector("button[type=submit]");
    // Disabled after this event, so the submission itself goes ahead.
    window.setTimeout(function () {
      button.disabled = true;
    }, 0);
    watch();
  });

  function watch() {
    function check() {
      window
        .fetch(form.action, {
          headers: { Accept: "application/json" },
          cache: "no-store",
          credentials: "omit",
        })
        .then(function (response) {
          return response.json();
        })
        .then(function (data) {
          if (data.state === "open" || data.state === "issuing") {
            window.setTimeout(check, 1500);
            return;
          }
          if (data.state === "issued" || data.state === "spent") {
            // The file is on its way as the form's response: stay on this page.
            form.hidden = true;
            errorBox.hidden = true;
            after.hidden = false;
            return;
          }
          window.location.reload();
        })
        .catch(function () {
          window.setTimeout(check, 3000);
        });
    }
    window.setTimeout(check, 1500);
  }

  // Windows 10 before 1709 (and Server 2016, which is 1607) cannot open the standard file.
  if (
    form.getAttribute("data-system") === "win10" &&
    navigator.userAgentData &&
    navigator.userAgentData.platform === "Windows" &&
    typeof navigator.userAgentData.getHighEntropyValues === "function"
  ) {
    navigator.userAgentData
      .getHighEntropyValues(["platformVersion"])
      .then(function (values) {
        var major = parseInt(String(values.platformVersion || "").split(".")[0], 10);
        if (!(major >= 1 && major < 5)) {
          return;
        }
        var standard = document.querySelector("#format-standard .badge-slot");
        var compatible = document.querySelector("#format-compatible .badge-slot");
        while (standard.firstChild) {
          compatible.appendChild(standard.firstChild);
        }
        var detected = document.getElementById("detected");
        detected.textContent = detected.getAttribute("data-old");
        document.getElementById("advice").hidden = true;
        document.getElementById("advice-check").hidden = true;
        document.getElementById("advice-old").hidden = false;
        if (!formatTouched) {
          document.querySelector("#format-compatible input").checked = true;
        }
      })
      .catch(function () {});
  }
})();
