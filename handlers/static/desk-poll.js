/*
 * Replies from the operations desk, without a reload.
 *
 * Once the conversation has been handed to the desk (a reply of kind "ticket" or "desk_ack", or an
 * agent's message, seen in the history or as a new reply), the frame asks
 * GET /api/conversations/<id>/messages?after=<last message id>&wait=25, which the server holds until
 * something newer exists (an agent's reply arrives within a fraction of a second), and asks again at
 * once. When the server answered at once with nothing (all its waiting slots taken) or the request
 * failed, it asks again after POLL_MS. It draws what is new: an agent's message under the agent's name, and the desk's own notices (the ticket resolved).
 * Answers to the user's own messages are drawn by the outbox already, so bot messages that answer a
 * message (in_reply_to) are skipped here. It stops while the tab is hidden, when the desk closes the
 * ticket ("desk_closed"), and when the conversation changes. Text is set with textContent only.
 */
import { h } from "./frame-util.js";
import { api } from "./frame-api.js";
import * as outbox from "./frame-outbox.js";
import * as render from "./frame-render.js";

const POLL_MS = 5000;
const WAIT_S = 25; // the server holds a request at most 30 s
const HELD_MS = (WAIT_S + 10) * 1000;
const HOLD_KINDS = ["ticket", "desk_ack"];
const END_KINDS = ["desk_closed"];

let lastId = 0;
let conversationId = null;
let active = false;
let timer = null;
let inFlight = false;
let generation = 0; // bumped by stop(): an answer to a request of before is dropped
let delay = 0; // before the next request: 0 after a held answer, POLL_MS after a quick empty one
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
  if (!active) delay = 0;
  active = true;
  schedule();
}

function stop() {
  active = false;
  generation += 1;
  inFlight = false;
  if (timer !== null) clearTimeout(timer);
  timer = null;
}

function schedule() {
  if (active && timer === null && !document.hidden && !inFlight) timer = setTimeout(tick, delay);
}

/* An agent's message, under the agent's name (`into`: the history slot, when replaying). */
export function renderAgent(m, into) {
  const time = m.created_at ? h("time", { className: "msg-time", datetime: m.created_at,
    text: String(m.created_at).slice(11, 16) }) : null;
  const node = render.append(h("div", { className: "msg msg-bot msg-agent" }, [
    h("strong", { className: "msg-author", text: (m.author || "担当者") + "（MAMIS運営事務局）" }),
    h("div", { className: "msg-text", text: String(m.text || "") }),
    time
  ]), into);
  if (!into) render.announceReply(); // the launcher's unread count, while the panel is closed
  return node;
}

function tick() {
  timer = null;
  const conv = outbox.currentConversation();
  if (!active || !conv || conv.id !== conversationId || document.hidden || inFlight) return schedule();
  inFlight = true;
  const mine = generation;
  const started = Date.now();
  const path = "/api/conversations/" + encodeURIComponent(conv.id) + "/messages?after=" + lastId + "&wait=" + WAIT_S;
  api("GET", path, undefined, conv.token, HELD_MS)
    .then((data) => {
      if (mine !== generation) return;
      const list = Array.isArray(data) ? data : [];
      for (const m of list) {
        const id = Number(m.id);
        if (drawn.has(id)) continue;
        if (m.role === "agent") renderAgent(m);
        else if (m.role === "bot" && !m.in_reply_to) render.renderBot(m);
        seen(m);
      }
      // Nothing, and at once: the server could not hold us (its slots were taken); ask less often.
      delay = list.length === 0 && Date.now() - started < WAIT_S * 500 ? POLL_MS : 0;
    })
    .catch(() => { delay = POLL_MS; }) // offline for a moment: ask again a little later
    .finally(() => {
      if (mine !== generation) return;
      inFlight = false;
      schedule();
    });
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && active) tick();
});
