// CertDesk web chat: plain JavaScript, no build step, no inline script (CSP default-src 'self').
//
// The session secret lives in sessionStorage: it survives a reload of this tab, and is gone
// when the tab closes (a shared computer does not show the next person the conversation).
// Every message has a seq; the page shows each seq once, in order, whichever way it came:
// the answer to an input (read back from the log), or the event stream (later pushes).
"use strict";

(function () {
  const SESSION_KEY = "certdesk.webchat.session";
  const LANG_KEY = "certdesk.webchat.lang";
  const STRINGS = JSON.parse(document.getElementById("ui-strings").textContent);

  const log = document.getElementById("log");
  const statusLine = document.getElementById("status");
  const form = document.getElementById("composer");
  const input = document.getElementById("input");
  const sendButton = document.getElementById("send");
  const langSwitch = document.getElementById("lang-switch");
  const restartButton = document.getElementById("restart");
  const attachButton = document.getElementById("attach");
  const fileInput = document.getElementById("file");

  let lang = document.body.dataset.lang;
  let session = null;
  let lastSeq = 0;
  let source = null;
  let busy = false;
  let focusAfter = null; // "choice" after a tap: focus the next question's first option

  // -- language ------------------------------------------------------------------------------

  function t(key) {
    return (STRINGS[lang] || STRINGS["zh_TW"])[key] || key;
  }

  function applyLang(next) {
    if (!STRINGS[next]) return;
    lang = next;
    try {
      localStorage.setItem(LANG_KEY, next);
    } catch (e) {
      /* storage may be disabled: the language then lasts for this page */
    }
    document.documentElement.lang = next === "en" ? "en" : "zh-Hant-TW";
    document.body.dataset.lang = next;
    document.querySelectorAll("[data-ui]").forEach(function (el) {
      el.textContent = t(el.dataset.ui);
    });
    document.querySelectorAll("[data-ui-placeholder]").forEach(function (el) {
      el.placeholder = t(el.dataset.uiPlaceholder);
    });
    document.querySelectorAll("[data-ui-label]").forEach(function (el) {
      el.setAttribute("aria-label", t(el.dataset.uiLabel));
    });
    document.querySelectorAll("[data-ui-title]").forEach(function (el) {
      el.title = t(el.dataset.uiTitle);
    });
    langSwitch.textContent = t("switch_to");
    langSwitch.setAttribute("aria-label", t("switch_label") + ": " + t("switch_to"));
    langSwitch.lang = next === "en" ? "zh-Hant-TW" : "en";
    document.querySelectorAll(".msg.customer.hidden-input .text").forEach(function (el) {
      el.textContent = t("hidden");
    });
  }

  // -- the API -------------------------------------------------------------------------------

  async function api(method, path, body) {
    const options = {
      method: method,
      headers: { Accept: "application/json" },
      cache: "no-store",
      credentials: "same-origin",
    };
    if (body instanceof Blob) {
      options.headers["Content-Type"] = "application/octet-stream";
      options.headers["X-Filename"] = encodeURIComponent(body.name || "");
      options.headers["X-Message-Id"] = clientId();
      options.body = body;
    } else if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    let data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    if (!response.ok) {
      const error = new Error((data && data.message) || response.statusText);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function sessionPath(tail) {
    return "/api/chat/sessions/" + encodeURIComponent(session) + tail;
  }

  function clientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, function (b) {
      return b.toString(16).padStart(2, "0");
    }).join("");
  }

  // -- showing messages ----------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function safeUrl(url) {
    try {
      const parsed = new URL(url, location.href);
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
    } catch (e) {
      return null;
    }
  }

  function renderTable(table, title) {
    const wrap = el("div", "table-wrap");
    wrap.setAttribute("role", "region");
    wrap.setAttribute("aria-label", title);
    wrap.tabIndex = 0;
    const tableEl = el("table", "cert-table");
    tableEl.appendChild(el("caption", "", title));
    const head = el("thead");
    const headRow = el("tr");
    table.columns.forEach(function (column) {
      const th = el("th", "", column);
      th.scope = "col";
      headRow.appendChild(th);
    });
    head.appendChild(headRow);
    tableEl.appendChild(head);
    const bodyEl = el("tbody");
    table.rows.forEach(function (row) {
      const tr = el("tr");
      row.forEach(function (value, index) {
        const td = el("td", "", value);
        td.dataset.label = table.columns[index] || "";
        tr.appendChild(td);
      });
      bodyEl.appendChild(tr);
    });
    tableEl.appendChild(bodyEl);
    wrap.appendChild(tableEl);
    return wrap;
  }

  function renderMessage(message) {
    const fromCustomer = message.from === "customer";
    const row = el("div", "msg " + (fromCustomer ? "customer" : "bot"));
    row.dataset.seq = String(message.seq);
    const bubble = el("div", "bubble");
    bubble.appendChild(el("span", "visually-hidden", (fromCustomer ? t("you") : t("bot")) + ": "));
    if (message.table) {
      bubble.appendChild(renderTable(message.table, message.text));
    } else if (message.hidden) {
      row.classList.add("hidden-input");
      bubble.appendChild(el("p", "text", t("hidden")));
    } else if (message.text) {
      bubble.appendChild(el("p", "text", message.text));
    }
    if (message.link) {
      const href = safeUrl(message.link.url);
      if (href) {
        const a = el("a", "button link-button", message.link.label);
        a.href = href;
        a.target = "_blank";
        a.rel = "noopener noreferrer";
        bubble.appendChild(a);
      }
    }
    if (message.choices && message.choices.length) {
      const group = el("div", "choices");
      group.setAttribute("role", "group");
      if (message.text) group.setAttribute("aria-label", message.text.split("\n")[0]);
      message.choices.forEach(function (choice) {
        const button = el("button", "choice", choice.label);
        button.type = "button";
        button.dataset.action = choice.action;
        button.addEventListener("click", function () {
          focusAfter = "choice";
          send({ action: choice.action }, choice.label);
        });
        group.appendChild(button);
      });
      bubble.appendChild(group);
    }
    row.appendChild(bubble);
    return row;
  }

  // Show messages in seq order, each once. `complete` batches come from the log (a gap there
  // is history that was forgotten); a gap in a live batch means something is missing: re-read.
  function show(messages, complete) {
    let first = null;
    for (const message of messages) {
      if (message.seq <= lastSeq) continue;
      if (!complete && message.seq > lastSeq + 1) {
        sync().catch(noteOffline);
        break;
      }
      if (message.from === "customer") {
        const pending = log.querySelector(".msg.pending");
        if (pending) pending.remove();
      }
      const node = renderMessage(message);
      const pendingNow = log.querySelector(".msg.pending");
      log.insertBefore(node, pendingNow);
      lastSeq = message.seq;
      if (!first && message.from !== "customer") first = node;
    }
    if (first) {
      refreshChoices();
      scrollTo(first);
      if (!busy) focusNext(); // while a send is on, its end moves the focus (options enabled)
    }
  }

  // Only the newest question's options can be picked; older ones are kept for the record.
  function refreshChoices() {
    const rows = log.querySelectorAll(".msg:not(.pending)");
    const last = rows.length ? rows[rows.length - 1] : null;
    log.querySelectorAll("button.choice").forEach(function (button) {
      const current = last !== null && last.contains(button);
      button.disabled = busy || !current;
    });
  }

  function scrollTo(first) {
    const bottom = log.scrollHeight - log.clientHeight;
    const top = first.offsetTop - 8;
    log.scrollTop = Math.max(0, Math.min(bottom, top));
  }

  function focusNext() {
    if (focusAfter !== "choice") return;
    focusAfter = null;
    const option = log.querySelector("button.choice:not([disabled])");
    (option || input).focus({ preventScroll: true });
  }

  function addPending(label) {
    const row = el("div", "msg customer pending");
    const bubble = el("div", "bubble");
    bubble.appendChild(el("span", "visually-hidden", t("you") + ": "));
    bubble.appendChild(el("p", "text", label));
    row.appendChild(bubble);
    log.appendChild(row);
    log.scrollTop = log.scrollHeight;
    return row;
  }

  function setStatus(text) {
    statusLine.textContent = text || "";
    statusLine.hidden = !text;
  }

  function noteOffline() {
    setStatus(t("offline"));
  }

  // -- the conversation ----------------------------------------------------------------------

  async function sync() {
    const data = await api("GET", sessionPath("/messages?after=" + lastSeq));
    if (data.locale && data.locale !== lang) applyLang(data.locale);
    show(data.messages, true);
  }

  async function newSession() {
    const data = await api("POST", "/api/chat/sessions", { lang: lang });
    session = data.session;
    try {
      sessionStorage.setItem(SESSION_KEY, session);
    } catch (e) {
      /* the conversation then lasts as long as this page */
    }
    lastSeq = 0;
    log.querySelectorAll(".msg").forEach(function (node) {
      node.remove();
    });
  }

  function listen() {
    if (source) source.close();
    if (!window.EventSource) return;
    source = new EventSource(sessionPath("/events?after=" + lastSeq));
    source.onopen = function () {
      setStatus("");
    };
    source.onmessage = function (event) {
      try {
        show([JSON.parse(event.data)], false);
      } catch (e) {
        /* a malformed event is skipped; the next sync reads the log */
      }
    };
    source.onerror = function () {
      noteOffline();
      if (source && source.readyState === EventSource.CLOSED) {
        source = null;
        window.setTimeout(recover, 3000);
      }
    };
  }

  async function recover() {
    try {
      await sync();
      setStatus("");
      listen();
    } catch (e) {
      if (e.status === 404) {
        await start(true);
      } else {
        window.setTimeout(recover, 5000);
      }
    }
  }

  async function start(fresh) {
    setStatus(t("connecting"));
    try {
      if (!fresh) {
        try {
          session = sessionStorage.getItem(SESSION_KEY);
        } catch (e) {
          session = null;
        }
      }
      if (session && !fresh) {
        try {
          await sync();
        } catch (e) {
          if (e.status !== 404) throw e;
          session = null;
        }
      }
      if (!session || fresh) {
        await newSession();
        await sync();
      }
      setStatus("");
      listen();
    } catch (e) {
      setStatus(e.message && e.status ? e.message : t("offline"));
      window.setTimeout(function () {
        start(fresh);
      }, 5000);
    }
  }

  function setBusy(value) {
    busy = value;
    sendButton.disabled = value;
    langSwitch.disabled = value;
    attachButton.disabled = value;
    refreshChoices();
  }

  async function send(body, label) {
    if (busy || !session) return;
    setBusy(true);
    setStatus("");
    const pending = addPending(label);
    const payload = body instanceof Blob ? null : Object.assign({ id: clientId() }, body);
    try {
      const path = sessionPath(body instanceof Blob ? "/files" : "/messages");
      const sent = body instanceof Blob ? body : payload;
      let answer;
      try {
        answer = await api("POST", path, sent);
      } catch (e) {
        if (e.status || body instanceof Blob) throw e;
        answer = await api("POST", path, sent); // a network blip: the same id again
      }
      if (answer && answer.locale && answer.locale !== lang) applyLang(answer.locale);
      await sync();
      if (pending.isConnected) pending.remove();
    } catch (e) {
      pending.classList.add("failed");
      pending.classList.remove("pending");
      focusAfter = null;
      if (e.status === 404) {
        await start(true);
      } else {
        setStatus(e.status ? e.message : t("failed"));
      }
    } finally {
      setBusy(false);
      if (focusAfter === "choice") focusNext();
    }
  }

  // -- wiring --------------------------------------------------------------------------------

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || busy) return;
    input.value = "";
    autoGrow();
    send({ text: text }, text);
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  function autoGrow() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 160) + "px";
  }
  input.addEventListener("input", autoGrow);

  attachButton.addEventListener("click", function () {
    fileInput.click();
  });

  fileInput.addEventListener("change", function () {
    const file = fileInput.files && fileInput.files[0];
    fileInput.value = "";
    if (file) send(file, file.name);
  });

  langSwitch.addEventListener("click", function () {
    // The engine understands the language words in any language: it switches the conversation
    // and asks its question again in the new language; the page follows the answer's locale.
    send({ text: t("switch_word") }, t("switch_word"));
  });

  restartButton.addEventListener("click", function () {
    if (!window.confirm(t("restart_confirm"))) return;
    if (source) source.close();
    source = null;
    start(true);
  });

  const asked = new URLSearchParams(location.search).get("lang");
  let stored = null;
  try {
    stored = localStorage.getItem(LANG_KEY);
  } catch (e) {
    stored = null;
  }
  applyLang(asked && STRINGS[asked] ? asked : stored && STRINGS[stored] ? stored : lang);
  start(false);
})();
