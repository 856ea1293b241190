/*
 * The JSON API client and the staff session as the server sees it.
 *
 * Requests go to the help desk's own origin (or body[data-api-base]) with credentials
 * "same-origin": the staff session is an HttpOnly cookie of that origin, and every state-changing
 * request carries the CSRF token from GET /api/session. Who is asking is decided by the server from
 * that cookie, never by this script.
 */
import { apiBase } from "./frame-util.js";

const REQUEST_TIMEOUT_MS = 20000;

export class ApiError {
  constructor(status, code, message) {
    this.status = status;
    this.code = code;
    this.message = message;
  }
}

/* The frame's own words for what went wrong, in one place: only for when the server cannot say it
   (unreachable, or an answer without its JSON error). Every other error sentence is the server's
   (helpdesk/errors.py), shown as it comes. */
export const TEXTS = {
  busy: "混み合っています。少し時間をおいて再送信してください。",
  server: "サーバーでエラーが発生しました。時間をおいて再送信してください。",
  refused: "送信できませんでした。内容を確認してもう一度お試しください。",
  network: "サーバーに接続できませんでした。通信状態を確認して再送信してください。",
  history: "これまでの会話を読み込めませんでした。"
};

export function defaultMessage(status) {
  if (status === 429) return TEXTS.busy;
  if (status >= 500) return TEXTS.server;
  return TEXTS.refused;
}

/* The staff member signed in (or null), their quick actions and the CSRF token, once known. */
export const account = { known: false, staff: null, quickActions: [], csrfToken: null };
const sessionListeners = [];

/* fn(account) runs each time the session is read or changed. */
export function onSession(fn) { sessionListeners.push(fn); }

export function applySession(data) {
  account.known = true;
  account.staff = data && data.signed_in ? data.staff : null;
  account.quickActions = (data && data.quick_actions) || [];
  account.csrfToken = (data && data.csrf_token) || null;
  sessionListeners.forEach((fn) => fn(account));
  return data;
}

/* The server's view of who we are; a help desk without sign-in simply shows no account bar. */
export function refreshSession() {
  return api("GET", "/api/session").then(applySession, () => {
    sessionListeners.forEach((fn) => fn(account));
    return null;
  });
}

/* `timeoutMs`: longer for a held request (?wait=), which the server may keep up to 30 s. */
export function api(method, path, body, token, timeoutMs) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = "Bearer " + token;
  if (method !== "GET" && account.csrfToken) headers["X-CSRFToken"] = account.csrfToken;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs || REQUEST_TIMEOUT_MS);
  return fetch(apiBase + path, {
    method, headers, credentials: "same-origin", signal: controller.signal,
    body: body === undefined ? undefined : JSON.stringify(body)
  }).then((res) => res.json().catch(() => null).then((data) => {
    if (res.ok) return data;
    const err = (data && data.error) || {};
    throw new ApiError(res.status, err.code || "http_" + res.status, err.message || defaultMessage(res.status));
  }), () => {
    throw new ApiError(0, "network", TEXTS.network);
  }).finally(() => clearTimeout(timer));
}
