/*
 * Replies from the operations desk, without a reload.
 *
 * The server says whether the desk holds the conversation (`desk: {held, ticket}` in the answer to a
 * message and in GET …/messages?include=desk, docs/widget.md); the widget obeys it and never guesses
 * from the replies' kinds. While the desk holds it, the frame asks
 * GET /api/conversations/<id>/messages?after=<last message id>&wait=25&include=desk, which the server
 * holds until something newer exists (an agent's reply arrives within a fraction of a second), and
 * asks again at once. When the server answered at once with nothing (all its waiting slots taken) or the request
 * failed, it asks again after POLL_MS. It draws what is new: an agent's message under the agent's
 * name, and the desk's own notices (the ticket resolved). Answers to the user's own messages are
 * drawn by the outbox already, so bot messages that answer a message (in_reply_to) are skipped here.
 * It stops while the tab is hidden and when the server says the desk holds the conversation no more.
 *
 * 「新しい質問」 during a ticket keeps it (keep()): the old conversation is remembered in localStorage
 * and listened to beside the new one, so the agent's replies still arrive, marked with the ticket's
 * number, also after a reload, until the desk resolves it. Text is set with textContent only.
 */
import { NS, h, store } from "./frame-util.js";
import { api } from "./frame-api.js";
import * as outbox from "./frame-outbox.js";
import * as render from "./frame-render.js";

const POLL_MS = 5000;
const WAIT_S = 25; // the server holds a request at most 30 s
const HELD_MS = (WAIT_S + 10) * 1000;
const KEPT_KEY = NS + ":desk-kept"; // {id, token, number, lastId}: a ticket kept over 「新しい質問」

/* An agent's message, under the agent's name (`into`: the history slot, when replaying; `number`:
   the ticket it answers, when it is a kept one). */
export function renderAgent(m, into, number) {
  const time = m.created_at ? h("time", { className: "msg-time", datetime: m.created_at,
    text: String(m.created_at).slice(11, 16) }) : null;
  const node = render.append(h("div", { className: "msg msg-bot msg-agent" }, [
    h("strong", { className: "msg-author", text: (m.author || "担当者") + "（MAMIS運営事務局）" }),
    number ? h("span", { className: "msg-ticket", text: "お問い合わせ #" + number + " への返信" }) : null,
    h("div", { className: "msg-text", text: String(m.text || "") }),
    time
  ]), into);
  if (!into) render.announceReply(); // the launcher's unread count, while the panel is closed
  return node;
}

/* One conversation listened to: `conv()` gives {id, token} (or null), `kept` its ticket number when it
   is a kept one, `onEnd` runs when the desk closes it. */
function watcher(conv, kept, onEnd) {
  const w = { id: null, lastId: 0, number: kept || null, active: false, timer: null, inFlight: false,
    generation: 0, delay: 0, drawn: new Set() };

  w.stop = () => {
    w.active = false;
    w.generation += 1;
    w.inFlight = false;
    if (w.timer !== null) clearTimeout(w.timer);
    w.timer = null;
  };
  w.start = () => {
    if (!w.active) w.delay = 0;
    w.active = true;
    w.schedule();
  };
  w.schedule = () => {
    if (w.active && w.timer === null && !document.hidden && !w.inFlight) w.timer = setTimeout(tick, w.delay);
  };
  w.follow = () => {
    const c = conv();
    if (c && c.id !== w.id) {
      w.id = c.id;
      w.lastId = 0;
      w.drawn.clear();
      w.stop();
    }
  };
  w.seen = (message) => {
    w.follow();
    const id = Number(message.id);
    if (Number.isFinite(id) && id > w.lastId) w.lastId = id;
    if (Number.isFinite(id)) w.drawn.add(id);
  };
  /* The server's word on the desk's hold: listen while it holds the conversation, stop when not. */
  w.hold = (desk) => {
    if (!desk || typeof desk !== "object") return;
    w.follow();
    if (desk.held) {
      if (desk.ticket) w.number = String(desk.ticket);
      w.start();
    } else if (w.active) {
      w.stop();
      onEnd();
    }
  };

  function tick() {
    w.timer = null;
    const c = conv();
    if (!w.active || !c || c.id !== w.id || document.hidden || w.inFlight) return w.schedule();
    w.inFlight = true;
    const mine = w.generation;
    const started = Date.now();
    const path = "/api/conversations/" + encodeURIComponent(c.id) + "/messages?after=" + w.lastId + "&wait=" + WAIT_S +
      "&include=desk";
    api("GET", path, undefined, c.token, HELD_MS)
      .then((data) => {
        if (mine !== w.generation) return;
        const list = data && Array.isArray(data.messages) ? data.messages : [];
        for (const m of list) {
          if (w.drawn.has(Number(m.id))) continue;
          if (m.role === "agent") renderAgent(m, undefined, kept ? w.number : null);
          else if (m.role === "bot" && !m.in_reply_to) render.renderBot(m); // the desk's notices
          w.seen(m);
        }
        w.hold(data && data.desk);
        // Nothing, and at once: the server could not hold us (its slots were taken); ask less often.
        w.delay = list.length === 0 && Date.now() - started < WAIT_S * 500 ? POLL_MS : 0;
      }, (err) => {
        if (kept && [401, 403, 404].indexOf(err.status) >= 0) { w.stop(); onEnd(); }
        w.delay = POLL_MS; // offline for a moment: ask again a little later
      })
      .finally(() => {
        if (mine !== w.generation) return;
        w.inFlight = false;
        w.schedule();
      });
  }
  return w;
}

const current = watcher(() => outbox.currentConversation(), null, () => {});
let keptWatcher = null;

/* Tell the poller about a message the frame has shown (history or a new reply). */
export function seen(message) {
  if (message && typeof message === "object") current.seen(message);
}

/* Tell the poller what the server said of the desk's hold ({held, ticket}) for the current conversation. */
export function hold(desk) {
  current.hold(desk);
}

/* The ticket the current conversation has with the desk now ({number}), or null. */
export function holding() {
  return current.active ? { number: current.number } : null;
}

/* 「新しい質問」 during a ticket: keep listening to this conversation for the agent's replies. */
export function keep() {
  const c = outbox.currentConversation();
  if (!c || !current.active) return;
  store.set(KEPT_KEY, { id: c.id, token: c.token, number: current.number, lastId: current.lastId });
  current.stop();
  listenKept();
}

/* Forget a kept ticket (signing in or out: the next person must not see it). */
export function dropKept() {
  if (keptWatcher) keptWatcher.stop();
  keptWatcher = null;
  store.set(KEPT_KEY, null);
}

/* The ticket kept over 「新しい質問」 (from localStorage: also after a reload), if any. */
export function kept() {
  const saved = store.get(KEPT_KEY);
  return saved && saved.id && saved.token ? saved : null;
}

/* Listen to the kept ticket, if any (the frame calls it once its history is drawn). */
export function listenKept() {
  const saved = kept();
  if (keptWatcher) keptWatcher.stop();
  keptWatcher = null;
  if (!saved) return;
  keptWatcher = watcher(() => kept(), saved.number, () => store.set(KEPT_KEY, null));
  keptWatcher.seen({ id: saved.lastId });
  keptWatcher.hold({ held: true, ticket: saved.number }); // kept while held; the server says when it ends
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden) return;
  for (const w of [current, keptWatcher]) if (w && w.active) w.schedule();
});
