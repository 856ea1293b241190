/*
 * The conversation and the outbox: questions and pressed buttons wait here until the server has
 * answered them.
 *
 * Each message carries an idempotency key that a resend reuses, so a retry or a double click is
 * stored and answered once. What is typed but not yet answered is kept in localStorage and shown
 * again as 未送信 after a reload. Messages go out one at a time, in order.
 *
 * The outbox draws nothing itself: the page connects a view (show, state, reply, typing).
 */
import { NS, store, newKey, charCount } from "./frame-util.js";
import { api, ApiError, refreshSession } from "./frame-api.js";

export const MAX_CHARS = 2000; // same limit as the API
export const ESCALATE_TEXT = "担当者と話したい";
const STORE_CONVERSATION = NS + ":conversation";
const STORE_PENDING = NS + ":pending";

let conversation = store.get(STORE_CONVERSATION); // {id, token} or null
let creating = null;
let pending = store.get(STORE_PENDING) || []; // [{key, text, button}] not yet answered
let queue = [];
let inFlight = false;
let generation = 0; // bumped by 「新しい質問」 so late answers to the old conversation are dropped

const view = { show() {}, state() {}, reply() {}, desk() {}, typing() {} };

/* show(entry): a new message to draw; state(entry, state, error): 送信中 / 未送信 / sent;
   reply(reply, message): the server's answer; desk(hold): whether the desk holds the conversation
   now ({held, ticket}, from the server); typing(on): waiting for an answer. */
export function connect(handlers) { Object.assign(view, handlers); }

export function currentConversation() { return conversation; }

/* The messages typed but not yet answered (restored from localStorage after a reload). */
export function unanswered() { return pending.slice(); }

export function isPending(entry) { return pending.indexOf(entry) >= 0; }

/* Keys the server has stored after all (its answer was lost on the way): no longer unsent. */
export function forgetPending(keys) {
  pending = pending.filter((p) => !keys[p.key]);
  savePending();
}

/* Only key, text and button are kept, so a reload can show the message again as 未送信. */
function savePending() {
  store.set(STORE_PENDING, pending.length ? pending.map((p) => ({ key: p.key, text: p.text, button: p.button })) : null);
}

export function forgetConversation() {
  conversation = null;
  store.set(STORE_CONVERSATION, null);
}

/* 「新しい質問」, signing in or out: drop the conversation, the queue and what was unsent. */
export function reset() {
  generation += 1;
  creating = null;
  queue = [];
  inFlight = false;
  pending = [];
  savePending();
  forgetConversation();
  view.typing(false);
}

function ensureConversation() {
  if (conversation) return Promise.resolve(conversation);
  if (!creating) {
    const gen = generation;
    const request = creating = api("POST", "/api/conversations", {}).then((data) => {
      const created = { id: data.id, token: data.token };
      if (gen === generation) { // not if 「新しい質問」 was pressed meanwhile
        conversation = created;
        store.set(STORE_CONVERSATION, created);
      }
      return created;
    }).finally(() => { if (creating === request) creating = null; });
  }
  return creating;
}

/* A pressed button goes out as its short id (with the short text shown); a typed question as text. */
function body(entry) {
  const payload = { text: entry.text, idempotency_key: entry.key };
  if (entry.button) payload.button = entry.button;
  return payload;
}

function post(entry, retried) {
  return ensureConversation().then((conv) => {
    const path = "/api/conversations/" + encodeURIComponent(conv.id) + "/messages";
    return api("POST", path, body(entry), conv.token);
  }).catch((err) => {
    if (retried || !(err instanceof ApiError)) throw err;
    // The server no longer knows this conversation for us (unknown token, or signed in or out
    // meanwhile): start a new one once. A stale CSRF token: fetch a fresh one and send again.
    const stale = err.code === "csrf_failed";
    if (!stale && [401, 403, 404].indexOf(err.status) < 0) throw err;
    if (!stale) forgetConversation();
    return refreshSession().then(() => post(entry, true));
  });
}

/* Queue a message; returns an error sentence when the text cannot be sent, else null.
   `button` is the id of a pressed reply button, sent beside its short text. */
export function submit(raw, button) {
  const text = String(raw || "").replace(/^\s+|\s+$/g, "");
  if (!text) return "";
  const n = charCount(text);
  if (n > MAX_CHARS) return "質問は" + MAX_CHARS + "文字以内で入力してください（現在 " + n + " 文字）。";
  const entry = { key: newKey(), text, button: button || undefined, state: "sending" };
  pending.push(entry);
  savePending();
  view.show(entry);
  enqueue(entry);
  return null;
}

export function resend(entry) {
  if (entry.state === "sending") return; // a double click on 再送信
  view.state(entry, "sending");
  enqueue(entry);
}

function enqueue(entry) {
  queue.push(entry);
  pump();
}

function pump() {
  if (inFlight) return;
  const entry = queue.shift();
  if (!entry) { view.typing(false); return; }
  inFlight = true;
  view.typing(true);
  const gen = generation;
  post(entry).then((data) => {
    if (gen !== generation) return;
    pending = pending.filter((p) => p.key !== entry.key);
    savePending();
    view.state(entry, "sent", null, data && data.message);
    if (data && data.reply) view.reply(data.reply);
    if (data && data.desk) view.desk(data.desk);
  }, (err) => {
    if (gen !== generation) return;
    view.state(entry, "unsent", err && err.message);
  }).finally(() => {
    inFlight = false;
    pump();
  });
}
