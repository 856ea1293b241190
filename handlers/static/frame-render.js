/*
 * Drawing the conversation: messages, their times, sources, tables, buttons and feedback.
 *
 * Every text goes in with textContent (phone numbers become `tel:` links built as nodes); line
 * breaks are shown by CSS (white-space: pre-wrap). A new answer is scrolled so that its start is
 * in view, not its end: a long answer is read from the top.
 */
import { $, apiBase, h, formatDate, formatTime, safeUrl, textWithLinks } from "./frame-util.js";
import { account } from "./frame-api.js";
import { submit, resend } from "./frame-outbox.js";
import { renderFeedback } from "./frame-feedback.js";

const log = $("log");
const typing = $("typing");
let latestReply = null;
let unreadHook = () => {};

/* fn() runs for each answer that arrives (the page counts unread answers while it is closed). */
export function onNewReply(fn) { unreadHook = fn; }

/* A reply drawn by another part (an agent's message): counted like the bot's answers. */
export function announceReply() { unreadHook(); }

export function scrollToEnd() { log.scrollTop = log.scrollHeight; }

/* The end of the log, unless that hides the start of `node`: then its start goes to the top. */
function reveal(node) {
  scrollToEnd();
  const top = node.getBoundingClientRect().top - log.getBoundingClientRect().top;
  if (top < 0) log.scrollTop += top - 8;
}

/* The latest answer's start in view (on opening the panel, after loading the history). */
export function scrollToLatest() {
  if (latestReply && latestReply.isConnected) reveal(latestReply);
  else scrollToEnd();
}

/* Scroll just enough for the whole of `node` (a message that grew) to be visible. */
function keepInView(node) {
  const below = node.getBoundingClientRect().bottom - log.getBoundingClientRect().bottom;
  if (below > 0) log.scrollTop += below + 8;
}

export function append(node, into) {
  (into || log).appendChild(node);
  scrollToEnd();
  return node;
}

export function clearLog() {
  log.textContent = "";
  latestReply = null;
}

function speaker(label) { return h("span", { className: "visually-hidden", text: label + "：" }); }

function messageText(text) {
  const node = h("div", { className: "msg-text" });
  node.appendChild(textWithLinks(text));
  return node;
}

function timeOf(createdAt) {
  const text = formatTime(createdAt);
  return text ? h("time", { className: "msg-time", datetime: createdAt, text }) : null;
}

/* Send a pressed button: its short id when the reply gave one, else (older replies) its payload. */
export function press(button) {
  const label = String(button.label || button.payload || "");
  if (button.id) submit(String(button.echo || label), String(button.id));
  else submit(String(button.payload || label));
}

export function renderWelcome(notice) {
  const staff = account.staff;
  let text = "MAMIS（医師会会員情報システム）についてのご質問をどうぞ。\n" +
    "例：「送付区分設定とは何ですか」「医療機関マスタはいつ更新されますか」";
  if (staff) {
    text += "\n\n" + (staff.display_name || staff.login_id) + "としてログインしています。" +
      "会員番号・先生のお名前・医療機関名で、手続きの状況や送付先などを照会できます。" +
      "\n例：「会員番号1234567の入会手続きはどこまで進んでいますか」";
  }
  append(h("div", { className: "msg msg-bot msg-welcome" }, [
    speaker("ヘルプデスク"),
    notice ? h("p", { className: "msg-notice", role: "status", text: notice }) : null,
    messageText(text),
    staff ? renderChoices(account.quickActions) : null
  ]));
}

function userBubble(text, createdAt) {
  return h("div", { className: "msg msg-user" }, [
    speaker("あなた"),
    h("div", { className: "msg-text", text }),
    timeOf(createdAt)
  ]);
}

export function renderUser(message, into) { return append(userBubble(message.text || "", message.created_at), into); }

/* A message the server has not (yet) answered: 送信中 or 未送信 with 再送信. */
export function renderPending(entry, into) {
  const bubble = userBubble(entry.text);
  bubble.setAttribute("data-key", entry.key);
  bubble.appendChild(h("div", { className: "msg-status" }));
  entry.el = bubble;
  append(bubble, into);
  setEntryState(entry, entry.state || "unsent", entry.error);
}

export function setEntryState(entry, state, errorMessage, stored) {
  entry.state = state;
  const bubble = entry.el;
  if (!bubble) return;
  const status = bubble.querySelector(".msg-status");
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
      onclick(event) {
        event.currentTarget.disabled = true;
        resend(entry);
      }
    }));
    keepInView(bubble);
  } else {
    status.remove();
    bubble.removeAttribute("data-key");
    bubble.classList.remove("is-unsent", "is-sending");
    const time = timeOf(stored && stored.created_at);
    if (time) bubble.appendChild(time);
  }
}

function renderSources(sources) {
  const items = (sources || []).map((s) => {
    const href = safeUrl(s.url || ("/kb/" + encodeURIComponent(s.slug || "")));
    if (!href) return null;
    return h("li", null, [
      h("a", { href, target: "_blank", rel: "noopener" }, [
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

/* A small table of a lookup answer: caption, header row and cells, all as text. A two-column
   table is labels and values: its label column is sized to its words (.is-labelled). */
function renderTable(table) {
  if (!table || !Array.isArray(table.rows) || !table.rows.length) return null;
  const columns = Array.isArray(table.columns) ? table.columns : [];
  const cell = (tag, value, extra) => {
    const node = h(tag, extra);
    node.appendChild(textWithLinks(String(value)));
    return node;
  };
  return h("table", { className: "reply-table" + (columns.length === 2 ? " is-labelled" : "") }, [
    table.caption ? h("caption", { text: String(table.caption) }) : null,
    columns.length ? h("thead", null, [h("tr", null, columns.map((c) => h("th", { scope: "col", text: String(c) })))]) : null,
    h("tbody", null, table.rows.map((row) => h("tr", null, (Array.isArray(row) ? row : []).map((value) => cell("td", value)))))
  ]);
}

export function renderChoices(buttons) {
  const list = (buttons || []).filter((b) => b && (b.id || b.payload || b.label));
  if (!list.length) return null;
  return h("div", { className: "choices", role: "group", "aria-label": "選択肢" }, list.map((b) => h("button", {
    type: "button", className: "choice-button", text: b.label || b.echo || b.payload,
    onclick() { press(b); }
  })));
}

/* Actions from the core: a button (offer_escalation), or the desk's phone (handoff). */
function renderActions(actions) {
  const nodes = (actions || []).map((a) => {
    if (!a || typeof a !== "object") return null;
    if ((a.id || a.payload) && a.label) {
      return h("button", { type: "button", className: "choice-button", text: String(a.label), onclick() { press(a); } });
    }
    const digits = String(a.phone || "").replace(/[^0-9]/g, "");
    if (a.type === "handoff" && digits) {
      return h("a", { className: "phone-link", href: "tel:" + digits }, [
        document.createTextNode("電話する：" + (a.desk ? a.desk + " " : "")),
        h("span", { className: "tel", text: String(a.phone) })
      ]);
    }
    return null;
  }).filter(Boolean);
  return nodes.length ? h("div", { className: "choices" }, nodes) : null;
}

/* A freshly issued link code: the Telegram deep link (one tap on the doctor's phone) and its QR code
   (one scan from this screen). Absent while the bot has never run, and on stored replies. */
function renderTelegramLink(link) {
  if (!link || typeof link !== "object") return null;
  const url = safeUrl(link.url);
  if (!url || !/^https:\/\/t\.me\//.test(url)) return null;
  return h("div", { className: "telegram-link" }, [
    h("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: "Telegram で連携する（先生のスマートフォンで開くリンク）" }),
    typeof link.qr === "string" && link.qr.startsWith("/api/telegram/link/")
      ? h("img", { src: apiBase + link.qr, alt: "Telegram 連携用 QR コード（先生のスマートフォンで読み取ってください）",
          width: 164, height: 164 })
      : null
  ]);
}

/* A stored bot message may carry its reply nested under `reply`; a fresh reply is flat. */
function replyOf(m) {
  if (!m.reply || typeof m.reply !== "object") return m;
  const r = Object.assign({}, m.reply, { id: m.id, created_at: m.created_at });
  if (m.feedback !== undefined) r.feedback = m.feedback;
  if (!r.text) r.text = m.text;
  return r;
}

/* `into` is the history slot when replaying stored messages; new replies go to the end of the log
   with their start in view. Feedback is asked for on answers only, not on prompts or refusals. */
export function renderBot(message, into) {
  const reply = replyOf(message);
  const answered = reply.kind === "answer" && reply.id !== undefined && reply.id !== null;
  const node = h("div", { className: "msg msg-bot" }, [
    speaker("ヘルプデスク"),
    messageText(reply.text || ""),
    renderTable(reply.table),
    renderTelegramLink(reply.telegram),
    renderSources(reply.sources),
    renderChoices(reply.buttons),
    renderActions(reply.actions),
    answered ? renderFeedback(reply.id, reply.feedback, renderBot) : null,
    timeOf(reply.created_at)
  ]);
  (into || log).appendChild(node);
  latestReply = node;
  if (into) {
    scrollToEnd();
  } else {
    reveal(node);
    unreadHook();
  }
  return node;
}

export function setTyping(on) {
  typing.hidden = !on;
  log.setAttribute("aria-busy", on ? "true" : "false");
  if (on) scrollToEnd();
}
