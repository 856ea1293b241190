/*
 * MAMIS ヘルプデスク chat frame: the chat UI inside the widget's iframe (an ES module, no build step).
 *
 * This module wires the parts together and talks to the embedding page, only through
 * postMessage, checked both ways. The parts:
 *   frame-util.js      DOM building, storage, dates and times, links (phone numbers → tel:)
 *   frame-api.js       the JSON API client and the staff session
 *   frame-outbox.js    the conversation and the messages waiting for an answer (idempotent resend)
 *   frame-render.js    drawing messages, sources, tables, buttons; scrolling to a new answer's start
 *   frame-feedback.js  役に立った／役に立たなかった and the next step after it
 *   frame-composer.js  the input: IME-safe Enter, counter, suggestions
 *   frame-signin.js    staff sign-in, the account bar, signing out
 */
import { NS, $, h, params } from "./frame-util.js";
import { TEXTS, api, refreshSession } from "./frame-api.js";
import * as outbox from "./frame-outbox.js";
import * as render from "./frame-render.js";
import { clearComposer, hideSuggestions, isImeKey, submitText, updateCounter } from "./frame-composer.js";
import { accountChange, initSignIn } from "./frame-signin.js";
import * as deskPoll from "./desk-poll.js";

const ui = {
  title: $("chat-title"), log: $("log"), input: $("input"), newConversation: $("new-conversation"),
  escalate: $("escalate"), close: $("close")
};

/* ---------- the embedding page ---------- */

const parentOrigin = (() => {
  if (window.parent === window) return null;
  const claimed = params.get("origin") || "";
  try { if (new URL(claimed).origin !== claimed) return null; } catch (e) { return null; }
  const ancestors = location.ancestorOrigins;
  if (ancestors && ancestors.length && ancestors[0] !== claimed) return null;
  return claimed;
})();
const embedded = parentOrigin !== null;
let isOpen = !embedded;
let unread = 0;

function tellHost(type, extra) {
  if (!embedded) return;
  window.parent.postMessage(Object.assign({ source: NS, type }, extra || {}), parentOrigin);
}

function setUnread(n) {
  if (n === unread) return;
  unread = n;
  tellHost("unread", { count: n });
}

window.addEventListener("message", (event) => {
  if (!embedded || event.source !== window.parent || event.origin !== parentOrigin) return;
  const msg = event.data;
  if (!msg || typeof msg !== "object" || msg.source !== NS) return;
  if (msg.type === "open") {
    isOpen = true;
    setUnread(0);
    render.scrollToLatest();
    if (msg.focus) ui.input.focus();
  } else if (msg.type === "close") {
    isOpen = false;
    hideSuggestions();
  }
});

/* ---------- the outbox draws through the renderer ---------- */

outbox.connect({
  show: (entry) => render.renderPending(entry),
  state: render.setEntryState,
  reply: (reply) => { render.renderBot(reply); deskPoll.seen(reply); },
  desk: (hold) => deskPoll.hold(hold),
  typing: render.setTyping
});
render.onNewReply(() => { if (!isOpen) setUnread(unread + 1); });

/* ---------- history ---------- */

function isUser(m) {
  const who = String(m.role || m.sender || m.author || m.from || "").toLowerCase();
  return who === "user" || who === "member" || who === "staff" || who === "human" || who === "visitor";
}

/* Show the stored conversation, then what was typed but never answered. Anything sent meanwhile
   goes below: history fills a slot placed right after the welcome message. */
function loadHistory(notice) {
  render.renderWelcome(notice);
  const slot = render.append(h("div", { className: "history" }));
  const unsent = outbox.unanswered();
  const done = () => {
    unsent.forEach((entry) => {
      if (!outbox.isPending(entry)) return;
      entry.state = "unsent";
      render.renderPending(entry, slot);
    });
    ui.log.setAttribute("aria-busy", "false");
    render.scrollToLatest();
    deskPoll.listenKept(); // a ticket kept over 「新しい質問」 before the reload
  };
  const conv = outbox.currentConversation();
  if (!conv) { done(); return; }
  ui.log.setAttribute("aria-busy", "true");
  api("GET", "/api/conversations/" + encodeURIComponent(conv.id) + "/messages?include=desk", undefined, conv.token)
    .then((data) => {
      const messages = Array.isArray(data) ? data : (data && data.messages) || [];
      const seen = {};
      messages.forEach((m) => {
        if (m.idempotency_key) seen[m.idempotency_key] = true;
        if (isUser(m)) render.renderUser(m, slot);
        else if (m.role === "agent") deskPoll.renderAgent(m, slot);
        else render.renderBot(m, slot);
        deskPoll.seen(m);
      });
      deskPoll.hold(data && data.desk); // replies from the desk keep coming without a reload (desk-poll.js)
      // Stored by the server before the reload, though its answer never arrived: not unsent after all.
      outbox.forgetPending(seen);
      done();
    }, (err) => {
      if ([401, 403, 404].indexOf(err.status) >= 0) outbox.forgetConversation();
      else render.append(h("p", { className: "log-note", text: TEXTS.history + err.message }), slot);
      done();
    });
}

/* 「新しい質問」, and signing in or out (with a notice that says so: then a kept ticket is dropped,
   it was the other person's). */
function startNewConversation(notice) {
  if (notice) deskPoll.dropKept();
  outbox.reset();
  render.clearLog();
  render.renderWelcome(notice);
  clearComposer();
  ui.input.focus();
}

/* ---------- header, escape, options ---------- */

/* 「新しい質問」 while the desk holds the conversation: say what happens, and let the user keep the
   ticket (the default) or start anew while the agent's replies keep arriving here (desk-poll.js). */
function guardNewConversation() {
  const ticket = deskPoll.holding();
  if (!ticket) { startNewConversation(); return; }
  const old = document.querySelector(".msg-guard");
  if (old) old.remove();
  const label = ticket.number ? "お問い合わせ #" + ticket.number : "お問い合わせ";
  const guard = render.append(h("div", { className: "msg msg-bot msg-guard", role: "group", "aria-label": "新しい質問の確認" }, [
    h("div", { className: "msg-text", text: label + " は担当者が対応中です。新しい質問を始めても、担当者からの返信は" +
      "このチャットに届きます（お問い合わせ番号付きで表示します）。" }),
    h("div", { className: "choices" }, [
      h("button", { type: "button", className: "choice-button", text: "このお問い合わせを続ける",
        onclick() { guard.remove(); ui.input.focus(); } }),
      h("button", { type: "button", className: "choice-button", text: "新しい質問を始める", onclick() {
        const conv = outbox.currentConversation();
        if (conv) api("POST", "/api/conversations/" + encodeURIComponent(conv.id) + "/new-question", {}, conv.token)
          .catch(() => {}); // the desk is told when it can be; the replies arrive either way
        deskPoll.keep();
        startNewConversation();
        render.append(h("p", { className: "log-info", text: label + " への担当者の返信は、このチャットに届きます。" }));
      } })
    ])
  ]));
  guard.querySelector("button").focus();
}

/* The footer's 「担当者に問い合わせる」 during a ticket: the request is already with the desk; say so. */
function escalateOrExplain() {
  const ticket = deskPoll.holding();
  if (!ticket) { submitText(outbox.ESCALATE_TEXT); return; }
  const label = ticket.number ? "お問い合わせ #" + ticket.number : "お問い合わせ";
  render.append(h("p", { className: "log-info", role: "status",
    text: label + " は担当者に届いています。返信はこのチャットに表示されます。補足はこのまま入力して送信してください。" }));
}

ui.newConversation.addEventListener("click", guardNewConversation);
ui.escalate.addEventListener("click", escalateOrExplain);
initSignIn(startNewConversation);

if (embedded) {
  ui.close.hidden = false;
  ui.close.addEventListener("click", () => tellHost("close"));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !event.defaultPrevented && !isImeKey(event)) tellHost("close");
  });
}

function contrastText(rgb) {
  const lum = rgb.map((v) => {
    const c = v / 255;
    return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
  });
  const l = 0.2126 * lum[0] + 0.7152 * lum[1] + 0.0722 * lum[2];
  return 1.05 / (l + 0.05) >= (l + 0.05) / 0.05 ? "#ffffff" : "#111111";
}

(function applyOptions() {
  const title = (params.get("title") || "").trim().slice(0, 60);
  if (title) {
    ui.title.textContent = title;
    document.title = title + " チャット";
  }
  const accent = (params.get("accent") || "").trim();
  if (accent && CSS.supports("color", accent)) {
    const root = document.documentElement;
    root.style.setProperty("--accent", accent);
    const probe = h("span", { hidden: "hidden" });
    probe.style.color = accent;
    document.body.appendChild(probe);
    const rgb = (getComputedStyle(probe).color.match(/[\d.]+/g) || []).slice(0, 3).map(Number);
    probe.remove();
    if (rgb.length === 3) root.style.setProperty("--accent-text", contrastText(rgb));
  }
})();

/* A sign-in or sign-out made elsewhere since this frame last looked: the old conversation was
   another person's, so a new one starts, and the chat says who is signed in now. */
refreshSession().then(() => {
  const notice = accountChange();
  if (notice) { outbox.reset(); deskPoll.dropKept(); }
  loadHistory(notice);
});
updateCounter();
tellHost("ready");
