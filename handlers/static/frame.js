/*
 * MAMIS ヘルプデスク chat frame: the chat UI inside the widget's iframe.
 *
 * It talks to the JSON API on its own origin (or body[data-api-base]) and to
 * the embedding page only through postMessage, checked both ways. User and
 * knowledge-base text is only ever inserted with textContent; line breaks are
 * shown by CSS (white-space: pre-wrap), so no text is ever parsed as HTML.
 *
 * Staff sign in here (「職員ログイン」): the session is an HttpOnly cookie of the
 * help desk's origin, so requests go out with credentials "same-origin", and
 * every state-changing request carries the CSRF token from GET /api/session.
 * Who is asking is decided by the server from that cookie, never by this script.
 */
(function () {
  "use strict";

  var NS = "mamis-helpdesk";
  var MAX_CHARS = 2000;          // same limit as the API
  var COUNTER_FROM = 1800;       // show the remaining count from here on
  var SUGGEST_DELAY_MS = 250;
  var SUGGEST_MIN_CHARS = 2;
  var SUGGEST_MAX = 3;
  var REQUEST_TIMEOUT_MS = 20000;
  var ESCALATE_TEXT = "担当者と話したい";
  var STORE_CONVERSATION = NS + ":conversation";
  var STORE_PENDING = NS + ":pending";

  var params = new URLSearchParams(location.search);
  var apiBase = (document.body.getAttribute("data-api-base") || "").replace(/\/+$/, "");
  var $ = function (id) { return document.getElementById(id); };
  var ui = {
    title: $("chat-title"), log: $("log"), typing: $("typing"), form: $("composer"),
    input: $("input"), send: $("send"), suggestions: $("suggestions"), counter: $("counter"),
    error: $("form-error"), newConversation: $("new-conversation"), escalate: $("escalate"),
    close: $("close"), accountBar: $("account-bar"), accountStatus: $("account-status"),
    signInOpen: $("sign-in-open"), signOut: $("sign-out"), signIn: $("sign-in"), signInForm: $("sign-in-form"),
    signInId: $("sign-in-id"), signInPassword: $("sign-in-password"), signInError: $("sign-in-error"),
    signInSubmit: $("sign-in-submit"), signInCancel: $("sign-in-cancel")
  };

  /* ---------- small helpers ---------- */

  function h(tag, props, children) {
    var el = document.createElement(tag);
    for (var k in props || {}) {
      if (k === "text") el.textContent = props[k];
      else if (k === "className") el.className = props[k];
      else if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), props[k]);
      else if (props[k] !== null && props[k] !== undefined && props[k] !== false) el.setAttribute(k, props[k]);
    }
    (children || []).forEach(function (c) { if (c) el.appendChild(c); });
    return el;
  }

  /* Characters as the server counts them (code points, not UTF-16 units). */
  function charCount(text) { return Array.from(text).length; }

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  var store = {
    get: function (key) {
      try { return JSON.parse(localStorage.getItem(key) || "null"); } catch (e) { return null; }
    },
    set: function (key, value) {
      try {
        if (value === null || value === undefined) localStorage.removeItem(key);
        else localStorage.setItem(key, JSON.stringify(value));
      } catch (e) { /* storage blocked or full: keep going in memory */ }
    }
  };

  function formatDate(value) {
    var m = /^(\d{4})-(\d{2})-(\d{2})/.exec(value || "");
    return m ? m[1] + "年" + Number(m[2]) + "月" + Number(m[3]) + "日" : (value || "");
  }

  /* Only http(s) links, resolved against the API's origin (article pages live there). */
  function safeUrl(url) {
    try {
      var u = new URL(url, apiBase || location.origin);
      return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
    } catch (e) { return null; }
  }

  /* ---------- the embedding page ---------- */

  var parentOrigin = (function () {
    if (window.parent === window) return null;
    var claimed = params.get("origin") || "";
    try { if (new URL(claimed).origin !== claimed) return null; } catch (e) { return null; }
    var ancestors = location.ancestorOrigins;
    if (ancestors && ancestors.length && ancestors[0] !== claimed) return null;
    return claimed;
  })();
  var embedded = parentOrigin !== null;
  var isOpen = !embedded;
  var unread = 0;

  function tellHost(type, extra) {
    if (!embedded) return;
    var message = { source: NS, type: type };
    for (var k in extra || {}) message[k] = extra[k];
    window.parent.postMessage(message, parentOrigin);
  }

  window.addEventListener("message", function (event) {
    if (!embedded || event.source !== window.parent || event.origin !== parentOrigin) return;
    var msg = event.data;
    if (!msg || typeof msg !== "object" || msg.source !== NS) return;
    if (msg.type === "open") {
      isOpen = true;
      setUnread(0);
      scrollToEnd();
      if (msg.focus) ui.input.focus();
    } else if (msg.type === "close") {
      isOpen = false;
      hideSuggestions();
    }
  });

  function setUnread(n) {
    if (n === unread) return;
    unread = n;
    tellHost("unread", { count: n });
  }

  /* ---------- API ---------- */

  function ApiError(status, code, message) {
    this.status = status;
    this.code = code;
    this.message = message;
  }

  function defaultMessage(status) {
    if (status === 429) return "混み合っています。少し時間をおいて再送信してください。";
    if (status >= 500) return "サーバーでエラーが発生しました。時間をおいて再送信してください。";
    return "送信できませんでした。内容を確認してもう一度お試しください。";
  }

  function api(method, path, body, token) {
    var headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = "Bearer " + token;
    if (method !== "GET" && account.csrfToken) headers["X-CSRFToken"] = account.csrfToken;
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS);
    return fetch(apiBase + path, {
      method: method, headers: headers, credentials: "same-origin", signal: controller.signal,
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (data) {
        if (res.ok) return data;
        var err = (data && data.error) || {};
        throw new ApiError(res.status, err.code || "http_" + res.status, err.message || defaultMessage(res.status));
      });
    }, function () {
      throw new ApiError(0, "network", "サーバーに接続できませんでした。通信状態を確認して再送信してください。");
    }).finally(function () { clearTimeout(timer); });
  }

  /* ---------- staff session ---------- */

  var account = { known: false, staff: null, quickActions: [], csrfToken: null };

  function applySession(data) {
    account.known = true;
    account.staff = data && data.signed_in ? data.staff : null;
    account.quickActions = (data && data.quick_actions) || [];
    account.csrfToken = (data && data.csrf_token) || null;
    renderAccount();
    return data;
  }

  /* The server's view of who we are; a help desk without sign-in simply shows no account bar. */
  function refreshSession() {
    return api("GET", "/api/session").then(applySession, function () {
      renderAccount();
      return null;
    });
  }

  function renderAccount() {
    ui.accountBar.hidden = !account.known;
    var staff = account.staff;
    ui.accountStatus.textContent = staff ? "職員ログイン中：" + (staff.display_name || staff.login_id) : "";
    ui.signInOpen.hidden = !!staff;
    ui.signOut.hidden = !staff;
  }

  /* ---------- conversation state ---------- */

  var conversation = store.get(STORE_CONVERSATION); // {id, token} or null
  var creating = null;
  var pending = store.get(STORE_PENDING) || [];     // [{key, text}] not yet answered
  var queue = [];
  var inFlight = false;
  var generation = 0; // bumped by 「新しい質問」 so late answers to the old conversation are dropped

  /* Only key and text are kept, so a reload can show the message again as 未送信. */
  function savePending() {
    store.set(STORE_PENDING, pending.length ? pending.map(function (p) {
      return { key: p.key, text: p.text };
    }) : null);
  }

  function forgetConversation() {
    conversation = null;
    store.set(STORE_CONVERSATION, null);
  }

  function ensureConversation() {
    if (conversation) return Promise.resolve(conversation);
    if (!creating) {
      var gen = generation;
      var request = creating = api("POST", "/api/conversations", {}).then(function (data) {
        var created = { id: data.id, token: data.token };
        if (gen === generation) { // not if 「新しい質問」 was pressed meanwhile
          conversation = created;
          store.set(STORE_CONVERSATION, created);
        }
        return created;
      }).finally(function () { if (creating === request) creating = null; });
    }
    return creating;
  }

  function postMessage(entry, retried) {
    return ensureConversation().then(function (conv) {
      var path = "/api/conversations/" + encodeURIComponent(conv.id) + "/messages";
      return api("POST", path, { text: entry.text, idempotency_key: entry.key }, conv.token);
    }).catch(function (err) {
      if (retried || !(err instanceof ApiError)) throw err;
      // The server no longer knows this conversation for us (unknown token, or signed in or out
      // meanwhile): start a new one once. A stale CSRF token: fetch a fresh one and send again.
      var stale = err.code === "csrf_failed";
      if (!stale && [401, 403, 404].indexOf(err.status) < 0) throw err;
      if (!stale) forgetConversation();
      return refreshSession().then(function () { return postMessage(entry, true); });
    });
  }

  /* ---------- rendering ---------- */

  function scrollToEnd() { ui.log.scrollTop = ui.log.scrollHeight; }

  function append(node, into) {
    (into || ui.log).appendChild(node);
    scrollToEnd();
    return node;
  }

  function speaker(label) { return h("span", { className: "visually-hidden", text: label + "：" }); }

  function renderWelcome() {
    var staff = account.staff;
    var text = "MAMIS（医師会会員情報システム）についてのご質問をどうぞ。\n" +
      "例：「送付区分設定とは何ですか」「医療機関マスタはいつ更新されますか」";
    if (staff) {
      text += "\n\n" + (staff.display_name || staff.login_id) + "としてログインしています。" +
        "会員番号・先生のお名前・医療機関名で、手続きの状況や送付先などを照会できます。" +
        "\n例：「会員番号1234567の入会手続きはどこまで進んでいますか」";
    }
    append(h("div", { className: "msg msg-bot msg-welcome" }, [
      speaker("ヘルプデスク"),
      h("div", { className: "msg-text", text: text }),
      staff ? renderChoices(account.quickActions) : null
    ]));
  }

  function userBubble(text) {
    return h("div", { className: "msg msg-user" }, [
      speaker("あなた"),
      h("div", { className: "msg-text", text: text })
    ]);
  }

  function renderUser(text, into) { return append(userBubble(text), into); }

  /* A message the server has not (yet) answered: 送信中 or 未送信 with 再送信. */
  function renderPending(entry, into) {
    var bubble = userBubble(entry.text);
    bubble.setAttribute("data-key", entry.key);
    bubble.appendChild(h("div", { className: "msg-status" }));
    entry.el = bubble;
    append(bubble, into);
    setEntryState(entry, entry.state || "unsent", entry.error);
  }

  function setEntryState(entry, state, errorMessage) {
    entry.state = state;
    var bubble = entry.el;
    if (!bubble) return;
    var status = bubble.querySelector(".msg-status");
    bubble.classList.toggle("is-unsent", state === "unsent");
    bubble.classList.toggle("is-sending", state === "sending");
    status.textContent = "";
    if (state === "sending") {
      status.appendChild(h("span", { className: "status-label", text: "送信中…" }));
    } else if (state === "unsent") {
      status.appendChild(h("span", { className: "status-label unsent-label", text: "未送信" }));
      if (errorMessage) status.appendChild(h("span", { className: "status-reason", text: errorMessage }));
      status.appendChild(h("button", {
        type: "button", className: "retry-button", text: "再送信",
        onclick: function (event) {
          event.currentTarget.disabled = true;
          resend(entry);
        }
      }));
    } else {
      status.remove();
      bubble.removeAttribute("data-key");
      bubble.classList.remove("is-unsent", "is-sending");
    }
  }

  function renderSources(sources) {
    var items = (sources || []).map(function (s) {
      var href = safeUrl(s.url || ("/kb/" + encodeURIComponent(s.slug || "")));
      if (!href) return null;
      return h("li", null, [
        h("a", { href: href, target: "_blank", rel: "noopener" }, [
          h("span", { text: s.title || s.slug || "記事" }),
          h("span", { className: "visually-hidden", text: "（新しいタブで開きます）" })
        ]),
        s.updated ? h("span", { className: "updated", text: "更新日 " + formatDate(s.updated) }) : null
      ]);
    }).filter(Boolean);
    if (!items.length) return null;
    return h("div", { className: "sources" }, [
      h("p", { className: "sources-title", text: "参照した記事" }),
      h("ul", null, items)
    ]);
  }

  /* A small table of a lookup answer: caption, header row and cells, all as text. */
  function renderTable(table) {
    if (!table || !Array.isArray(table.rows) || !table.rows.length) return null;
    var columns = Array.isArray(table.columns) ? table.columns : [];
    var node = h("table", { className: "reply-table" }, [
      table.caption ? h("caption", { text: String(table.caption) }) : null,
      columns.length ? h("thead", null, [h("tr", null, columns.map(function (c) {
        return h("th", { scope: "col", text: String(c) });
      }))]) : null,
      h("tbody", null, table.rows.map(function (row) {
        return h("tr", null, (Array.isArray(row) ? row : []).map(function (cell) {
          return h("td", { text: String(cell) });
        }));
      }))
    ]);
    return node;
  }

  function renderChoices(buttons) {
    var list = (buttons || []).filter(function (b) { return b && (b.payload || b.label); });
    if (!list.length) return null;
    return h("div", { className: "choices", role: "group", "aria-label": "選択肢" }, list.map(function (b) {
      return h("button", {
        type: "button", className: "choice-button", text: b.label || b.payload,
        onclick: function () { submitText(String(b.payload || b.label)); }
      });
    }));
  }

  /* Actions from the core: a button that sends its payload (offer_escalation), or the desk's phone (handoff). */
  function renderActions(actions) {
    var nodes = (actions || []).map(function (a) {
      if (!a || typeof a !== "object") return null;
      if (a.payload && a.label) {
        return h("button", {
          type: "button", className: "choice-button", text: String(a.label),
          onclick: function () { submitText(String(a.payload)); }
        });
      }
      var digits = String(a.phone || "").replace(/[^0-9]/g, "");
      if (a.type === "handoff" && digits) {
        return h("a", { className: "phone-link", href: "tel:" + digits,
          text: "電話する：" + (a.desk ? a.desk + " " : "") + a.phone });
      }
      return null;
    }).filter(Boolean);
    return nodes.length ? h("div", { className: "choices" }, nodes) : null;
  }

  function renderFeedback(messageId, given) {
    var group = h("div", { className: "feedback", role: "group", "aria-label": "この回答は役に立ちましたか" });
    var thanks = h("span", { className: "feedback-thanks" });
    var buttons = [[true, "役に立った"], [false, "役に立たなかった"]].map(function (pair) {
      return h("button", {
        type: "button", className: "feedback-button", text: pair[1], "aria-pressed": "false",
        onclick: function (event) { choose(pair[0], event.currentTarget); }
      });
    });
    function lock(helpful) {
      buttons.forEach(function (b, i) {
        b.setAttribute("aria-disabled", "true");
        b.disabled = true;
        b.setAttribute("aria-pressed", String((i === 0) === helpful));
      });
      thanks.textContent = "ご意見ありがとうございます。";
    }
    function choose(helpful, button) {
      if (button.getAttribute("aria-disabled") === "true") return;
      buttons.forEach(function (b) { b.disabled = true; b.setAttribute("aria-disabled", "true"); });
      thanks.textContent = "送信中…";
      api("POST", "/api/messages/" + encodeURIComponent(messageId) + "/feedback", { helpful: helpful },
        conversation && conversation.token
      ).then(function () {
        lock(helpful);
        thanks.setAttribute("tabindex", "-1");
        thanks.focus(); // the pressed button is now disabled; keep focus nearby
      }, function (err) {
        buttons.forEach(function (b) { b.disabled = false; b.removeAttribute("aria-disabled"); });
        thanks.textContent = err.message;
      });
    }
    buttons.forEach(function (b) { group.appendChild(b); });
    group.appendChild(thanks);
    if (given === true || given === false) lock(given);
    return group;
  }

  /* A stored bot message may carry its reply nested under `reply`; a fresh reply is flat. */
  function replyOf(m) {
    if (!m.reply || typeof m.reply !== "object") return m;
    var r = {};
    for (var k in m.reply) r[k] = m.reply[k];
    r.id = m.id;
    if (m.feedback !== undefined) r.feedback = m.feedback;
    if (!r.text) r.text = m.text;
    return r;
  }

  /* `into` is the history slot when replaying stored messages; new replies go to the end of the log. */
  function renderBot(message, into) {
    var reply = replyOf(message);
    var node = h("div", { className: "msg msg-bot" }, [
      speaker("ヘルプデスク"),
      h("div", { className: "msg-text", text: reply.text || "" }),
      renderTable(reply.table),
      renderSources(reply.sources),
      renderChoices(reply.buttons),
      renderActions(reply.actions),
      reply.id !== undefined && reply.id !== null ? renderFeedback(reply.id, reply.feedback) : null
    ]);
    append(node, into);
    if (!into && !isOpen) setUnread(unread + 1);
    return node;
  }

  function setTyping(on) {
    ui.typing.hidden = !on;
    ui.log.setAttribute("aria-busy", on ? "true" : "false");
    if (on) scrollToEnd();
  }

  /* ---------- sending ---------- */

  function showError(text) { ui.error.textContent = text || ""; }

  function submitText(raw) {
    var text = String(raw || "").replace(/^\s+|\s+$/g, "");
    if (!text) return false;
    var n = charCount(text);
    if (n > MAX_CHARS) {
      showError("質問は" + MAX_CHARS + "文字以内で入力してください（現在 " + n + " 文字）。");
      return false;
    }
    showError("");
    var entry = { key: newKey(), text: text, state: "sending" };
    pending.push(entry);
    savePending();
    renderPending(entry);
    enqueue(entry);
    return true;
  }

  function resend(entry) {
    if (entry.state === "sending") return; // a double click on 再送信
    setEntryState(entry, "sending");
    enqueue(entry);
  }

  function enqueue(entry) {
    queue.push(entry);
    pump();
  }

  function pump() {
    if (inFlight) return;
    var entry = queue.shift();
    if (!entry) { setTyping(false); return; }
    inFlight = true;
    setTyping(true);
    var gen = generation;
    postMessage(entry).then(function (data) {
      if (gen !== generation) return;
      pending = pending.filter(function (p) { return p.key !== entry.key; });
      savePending();
      setEntryState(entry, "sent");
      if (data && data.reply) renderBot(data.reply);
    }, function (err) {
      if (gen !== generation) return;
      setEntryState(entry, "unsent", err && err.message);
    }).finally(function () {
      inFlight = false;
      pump();
    });
  }

  /* ---------- history ---------- */

  function isUser(m) {
    var who = String(m.role || m.sender || m.author || m.from || "").toLowerCase();
    return who === "user" || who === "member" || who === "staff" || who === "human" || who === "visitor";
  }

  /* Show the stored conversation, then what was typed but never answered. Anything sent meanwhile
     goes below: history fills a slot placed right after the welcome message. */
  function loadHistory() {
    renderWelcome();
    var slot = append(h("div", { className: "history" }));
    var unsent = pending.slice();
    var done = function () {
      unsent.forEach(function (entry) {
        if (pending.indexOf(entry) < 0) return;
        entry.state = "unsent";
        renderPending(entry, slot);
      });
      ui.log.setAttribute("aria-busy", "false");
      scrollToEnd();
    };
    if (!conversation) { done(); return; }
    ui.log.setAttribute("aria-busy", "true");
    var conv = conversation;
    api("GET", "/api/conversations/" + encodeURIComponent(conv.id) + "/messages", undefined, conv.token)
      .then(function (data) {
        var messages = Array.isArray(data) ? data : (data && data.messages) || [];
        var seen = {};
        messages.forEach(function (m) {
          if (m.idempotency_key) seen[m.idempotency_key] = true;
          if (isUser(m)) renderUser(m.text || "", slot);
          else renderBot(m, slot);
        });
        // Stored by the server before the reload, though its answer never arrived: not unsent after all.
        pending = pending.filter(function (p) { return !seen[p.key]; });
        savePending();
        done();
      }, function (err) {
        if ([401, 403, 404].indexOf(err.status) >= 0) forgetConversation();
        else append(h("p", { className: "log-note", text: "これまでの会話を読み込めませんでした。" + err.message }), slot);
        done();
      });
  }

  function startNewConversation() {
    generation += 1;
    creating = null;
    queue = [];
    inFlight = false;
    pending = [];
    savePending();
    forgetConversation();
    setTyping(false);
    ui.log.textContent = "";
    renderWelcome();
    ui.input.value = "";
    updateCounter();
    hideSuggestions();
    showError("");
    ui.input.focus();
  }

  /* ---------- input: IME-safe Enter, counter ---------- */

  var composing = false;
  var compositionJustEnded = false;

  ui.input.addEventListener("compositionstart", function () {
    composing = true;
    cancelSuggest();
  });
  ui.input.addEventListener("compositionend", function () {
    composing = false;
    // Safari fires keydown(Enter) right after compositionend for the Enter that
    // committed the conversion; ignore keys until this task has finished.
    compositionJustEnded = true;
    setTimeout(function () { compositionJustEnded = false; }, 0);
    scheduleSuggest();
  });

  function isImeKey(event) {
    return event.isComposing || event.keyCode === 229 || composing || compositionJustEnded;
  }

  ui.input.addEventListener("keydown", function (event) {
    if (isImeKey(event)) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (!suggestionsShown()) return;
      event.preventDefault();
      moveActive(event.key === "ArrowDown" ? 1 : -1);
    } else if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      if (suggestionsShown() && activeIndex >= 0) chooseSuggestion(activeIndex);
      else submitFromInput();
    } else if (event.key === "Escape" && suggestionsShown()) {
      event.preventDefault();
      event.stopPropagation();
      hideSuggestions();
    }
  });

  ui.input.addEventListener("input", function () {
    updateCounter();
    if (ui.error.textContent && charCount(ui.input.value) <= MAX_CHARS) showError("");
    if (!composing) scheduleSuggest();
  });

  function updateCounter() {
    var n = charCount(ui.input.value);
    var left = MAX_CHARS - n;
    ui.counter.classList.toggle("is-over", left < 0);
    if (n < COUNTER_FROM) ui.counter.textContent = "";
    else if (left >= 0) ui.counter.textContent = "残り " + left + " 文字";
    else ui.counter.textContent = -left + " 文字オーバーしています（" + MAX_CHARS + " 文字まで）";
  }

  function submitFromInput() {
    var value = ui.input.value;
    if (!value.trim()) { ui.input.focus(); return; }
    cancelSuggest();
    if (submitText(value)) {
      ui.input.value = "";
      updateCounter();
      hideSuggestions();
    }
    ui.input.focus();
  }

  ui.form.addEventListener("submit", function (event) {
    event.preventDefault();
    submitFromInput();
  });

  /* ---------- suggest as you type ---------- */

  var suggestTimer = null;
  var suggestSeq = 0;
  var suggestions = [];
  var activeIndex = -1;

  function suggestionsShown() { return !ui.suggestions.hidden && suggestions.length > 0; }

  function cancelSuggest() {
    clearTimeout(suggestTimer);
    suggestSeq += 1; // drop answers still on their way
  }

  function scheduleSuggest() {
    cancelSuggest();
    var q = ui.input.value.trim();
    if (charCount(q) < SUGGEST_MIN_CHARS || charCount(q) > 200) { hideSuggestions(); return; }
    var seq = suggestSeq;
    suggestTimer = setTimeout(function () {
      api("GET", "/api/suggest?q=" + encodeURIComponent(q)).then(function (data) {
        if (seq !== suggestSeq || composing) return;
        showSuggestions(((data && data.suggestions) || []).slice(0, SUGGEST_MAX));
      }, function () {
        if (seq === suggestSeq) hideSuggestions(); // suggestions are a nicety; stay quiet
      });
    }, SUGGEST_DELAY_MS);
  }

  function showSuggestions(list) {
    suggestions = list.filter(function (s) { return s && (s.question || s.title); });
    activeIndex = -1;
    ui.input.removeAttribute("aria-activedescendant");
    ui.suggestions.textContent = "";
    if (!suggestions.length) { hideSuggestions(); return; }
    suggestions.forEach(function (s, i) {
      ui.suggestions.appendChild(h("li", {
        id: "suggestion-" + i, role: "option", "aria-selected": "false", className: "suggestion",
        onmousedown: function (event) { event.preventDefault(); }, // keep focus in the textarea
        onclick: function () { chooseSuggestion(i); }
      }, [
        h("span", { className: "suggestion-question", text: s.question || s.title }),
        s.title && s.question ? h("span", { className: "suggestion-title", text: s.title }) : null
      ]));
    });
    ui.suggestions.hidden = false;
  }

  function hideSuggestions() {
    suggestions = [];
    activeIndex = -1;
    ui.suggestions.hidden = true;
    ui.suggestions.textContent = "";
    ui.input.removeAttribute("aria-activedescendant");
  }

  function moveActive(step) {
    var n = suggestions.length;
    activeIndex = activeIndex < 0 ? (step > 0 ? 0 : n - 1) : (activeIndex + step + n) % n;
    Array.prototype.forEach.call(ui.suggestions.children, function (li, i) {
      li.setAttribute("aria-selected", String(i === activeIndex));
    });
    ui.input.setAttribute("aria-activedescendant", "suggestion-" + activeIndex);
  }

  function chooseSuggestion(i) {
    var s = suggestions[i];
    if (!s) return;
    cancelSuggest();
    hideSuggestions();
    if (submitText(s.question || s.title)) {
      ui.input.value = "";
      updateCounter();
    }
    ui.input.focus();
  }

  /* ---------- header, escape ---------- */

  ui.newConversation.addEventListener("click", startNewConversation);

  /* ---------- staff sign-in ---------- */

  var SIGN_IN_BLOCKED = "この埋め込み表示ではログインを保てません（ブラウザが他サイト内の Cookie を保存しないため）。" +
    "ヘルプデスクのページを直接開いてログインしてください。";

  function showSignIn(on) {
    ui.signIn.hidden = !on;
    ui.log.hidden = on;
    document.querySelector(".composer").hidden = on;
    if (on) {
      ui.signInError.textContent = "";
      ui.signInPassword.value = "";
      ui.signInId.focus();
    }
  }

  function signInBlocked() {
    ui.signInError.textContent = SIGN_IN_BLOCKED;
    var link = safeUrl("/login");
    if (link && !ui.signIn.querySelector(".sign-in-help")) {
      ui.signInForm.appendChild(h("p", { className: "sign-in-help" }, [
        h("a", { href: link, target: "_blank", rel: "noopener", text: "ヘルプデスクのログインページを開く" })
      ]));
    }
  }

  ui.signInOpen.addEventListener("click", function () { showSignIn(true); });
  ui.signInCancel.addEventListener("click", function () {
    showSignIn(false);
    ui.signInOpen.focus();
  });

  ui.signInForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var loginId = ui.signInId.value.trim();
    var password = ui.signInPassword.value;
    if (!loginId || !password) {
      ui.signInError.textContent = "ログインIDとパスワードを入力してください。";
      (loginId ? ui.signInPassword : ui.signInId).focus();
      return;
    }
    ui.signInSubmit.disabled = true;
    ui.signInError.textContent = "";
    var ready = account.csrfToken ? Promise.resolve() : refreshSession();
    ready.then(function () {
      return api("POST", "/api/session", { login_id: loginId, password: password });
    }).then(function () {
      return refreshSession(); // did the browser keep the cookie? (not in a third-party frame)
    }).then(function (data) {
      if (!data || !data.signed_in) { signInBlocked(); return; }
      showSignIn(false);
      startNewConversation();
    }, function (err) {
      if (err && err.code === "csrf_failed") signInBlocked();
      else ui.signInError.textContent = (err && err.message) || defaultMessage(0);
      ui.signInPassword.value = "";
      ui.signInPassword.focus();
    }).finally(function () { ui.signInSubmit.disabled = false; });
  });

  ui.signOut.addEventListener("click", function () {
    ui.signOut.disabled = true;
    api("DELETE", "/api/session").then(applySession, function () { return refreshSession(); })
      .then(function () { startNewConversation(); })
      .finally(function () { ui.signOut.disabled = false; });
  });
  ui.escalate.addEventListener("click", function () { submitText(ESCALATE_TEXT); });

  if (embedded) {
    ui.close.hidden = false;
    ui.close.addEventListener("click", function () { tellHost("close"); });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && !event.defaultPrevented && !isImeKey(event)) tellHost("close");
    });
  }

  (function applyOptions() {
    var title = (params.get("title") || "").trim().slice(0, 60);
    if (title) {
      ui.title.textContent = title;
      document.title = title + " チャット";
    }
    var accent = (params.get("accent") || "").trim();
    if (accent && CSS.supports("color", accent)) {
      var root = document.documentElement;
      root.style.setProperty("--accent", accent);
      var probe = h("span", { hidden: "hidden" });
      probe.style.color = accent;
      document.body.appendChild(probe);
      var rgb = (getComputedStyle(probe).color.match(/[\d.]+/g) || []).slice(0, 3).map(Number);
      probe.remove();
      if (rgb.length === 3) root.style.setProperty("--accent-text", contrastText(rgb));
    }
  })();

  function contrastText(rgb) {
    var lum = rgb.map(function (v) {
      var c = v / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    var l = 0.2126 * lum[0] + 0.7152 * lum[1] + 0.0722 * lum[2];
    return 1.05 / (l + 0.05) >= (l + 0.05) / 0.05 ? "#ffffff" : "#111111";
  }

  refreshSession().then(loadHistory);
  updateCounter();
  tellHost("ready");
})();
