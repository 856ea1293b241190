/*
 * Replies from the operations desk, without a reload.
 *
 * Once the conversation has been handed to the desk (a reply of kind "ticket" or "desk_ack", or an
 * agent's message, seen in the history or as a new reply), the frame asks
 * GET /api/conversations/<id>/messages?after=<last message id> every few seconds and draws what is
 * new: an agent's message under the agent's name, and the desk's own notices (the ticket resolved).
 * Answers to the user's own messages are drawn by the outbox already, so bot messages that answer a
 * message (in_reply_to) are skipped here. It stops while the tab is hidden, when the desk closes the
 * ticket ("desk_closed"), and when the conversation changes. Text is set with textContent only.
 */
import { h } from "./frame-util.js";
import { api } from "./frame-api.js";
import * as outbox from "./frame-outbox.js";
import * as render from "./frame-render.js";

const POLL_MS = 5000;
const HOLD_KINDS = ["ticket", "desk_ack"];
const END_KINDS = ["desk_closed"];

let lastId = 0;
let conversationId = null;
let active = false;
let timer = null;
let inFlight = false;
const drawn = new Set();

function kindOf(m) {
  return m.kind || (m.reply && typeof m.reply === "object" ? m.reply.kind : undefined);
}

/* Tell the poller about a message the frame has shown (history or a new reply). */
export function seen(message) {
  if (!message || typeof message !== "object") return;
  const conv = outbox.currentConversation();
  if (conv && conv.id !== conversationId) {
    conversationId = conv.id;
    lastId = 0;
    drawn.clear();
    stop();
  }
  const id = Number(message.id);
  if (Number.isFinite(id) && id > lastId) lastId = id;
  if (Number.isFinite(id)) drawn.add(id);
  const kind = kindOf(message);
  if (END_KINDS.includes(kind)) stop();
  else if (HOLD_KINDS.includes(kind) || message.role === "agent") start();
}

function start() {
  active = true;
  schedule();
}

function stop() {
  active = false;
  if (timer !== null) clearTimeout(timer);
  timer = null;
}

function schedule() {
  if (active && timer === null && !document.hidden) timer = setTimeout(tick, POLL_MS);
}

/* An agent's message, under the agent's name (`into`: the history slot, when replaying). */
export function renderAgent(m, into) {
  const time = m.created_at ? h("time", { className: "msg-time", datetime: m.created_at,
    text: String(m.created_at).slice(11, 16) }) : null;
  return render.append(h("div", { className: "msg msg-bot msg-agent" }, [
    h("strong", { className: "msg-author", text: (m.author || "担当者") + "（MAMIS運営事務局）" }),
    h("div", { className: "msg-text", text: String(m.text || "") }),
    time
  ]), into);
}

function tick() {
  timer = null;
  const conv = outbox.currentConversation();
  if (!active || !conv || conv.id !== conversationId || document.hidden || inFlight) return schedule();
  inFlight = true;
  const path = "/api/conversations/" + encodeURIComponent(conv.id) + "/messages?after=" + lastId;
  api("GET", path, undefined, conv.token)
    .then((data) => {
      for (const m of Array.isArray(data) ? data : []) {
        const id = Number(m.id);
        if (drawn.has(id)) continue;
        if (m.role === "agent") renderAgent(m);
        else if (m.role === "bot" && !m.in_reply_to) render.renderBot(m);
        seen(m);
      }
    })
    .catch(() => {}) // offline for a moment: the next tick asks again
    .finally(() => { inFlight = false; schedule(); });
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && active) tick();
});
