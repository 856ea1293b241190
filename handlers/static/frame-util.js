/*
 * Small helpers the chat frame's modules share: building DOM nodes, localStorage, dates and times,
 * and links. Text from visitors and from the knowledge base only ever becomes DOM through
 * textContent (h(..., {text}) or document.createTextNode), so nothing here parses HTML.
 */

export const NS = "mamis-helpdesk";
export const params = new URLSearchParams(location.search);
export const apiBase = (document.body.getAttribute("data-api-base") || "").replace(/\/+$/, "");
export const $ = (id) => document.getElementById(id);

/* An element with text, class, listeners (onclick…) and attributes; null children are skipped. */
export function h(tag, props, children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "text") el.textContent = v;
    else if (k === "className") el.className = v;
    else if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) el.setAttribute(k, v);
  }
  (children || []).forEach((c) => { if (c) el.appendChild(c); });
  return el;
}

/* Characters as the server counts them (code points, not UTF-16 units). */
export function charCount(text) { return Array.from(text).length; }

export function newKey() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export const store = {
  get(key) {
    try { return JSON.parse(localStorage.getItem(key) || "null"); } catch (e) { return null; }
  },
  set(key, value) {
    try {
      if (value === null || value === undefined) localStorage.removeItem(key);
      else localStorage.setItem(key, JSON.stringify(value));
    } catch (e) { /* storage blocked or full: keep going in memory */ }
  }
};

export function formatDate(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(value || "");
  return m ? m[1] + "年" + Number(m[2]) + "月" + Number(m[3]) + "日" : (value || "");
}

/* The help desk is in Japan: times are read in Japan's time, whatever the visitor's computer says. */
const JAPAN_TIME = new Intl.DateTimeFormat("en-CA", {
  timeZone: "Asia/Tokyo", year: "numeric", month: "numeric", day: "numeric",
  hour: "2-digit", minute: "2-digit", hourCycle: "h23"
});

function japanParts(date) {
  const parts = {};
  JAPAN_TIME.formatToParts(date).forEach((p) => { parts[p.type] = p.value; });
  return parts;
}

/* A message's time as chats show it: 「14:05」 today, 「11月30日 14:05」 on an earlier day,
   with the year only when it is not this year. Empty for a missing or unreadable time. */
export function formatTime(iso, now) {
  const date = new Date(iso || "");
  if (isNaN(date.getTime())) return "";
  const t = japanParts(date);
  const today = japanParts(now || new Date());
  const clock = t.hour + ":" + t.minute;
  if (t.year === today.year && t.month === today.month && t.day === today.day) return clock;
  const day = t.month + "月" + t.day + "日 " + clock;
  return t.year === today.year ? day : t.year + "年" + day;
}

/* Only http(s) links, resolved against the API's origin (article pages live there). */
export function safeUrl(url) {
  try {
    const u = new URL(url, apiBase || location.origin);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch (e) { return null; }
}

/* A Japanese phone number written with hyphens (0120-110-030, 03-3942-6139): 10 or 11 digits
   starting with 0, not part of a longer run of digits or hyphens. */
const PHONE = /(^|[^\d\-－])(0\d{1,4}[-－]\d{1,4}[-－]\d{3,4})(?![\d\-－])/g;

/* A `tel:` link that never breaks inside the number (CSS .tel: white-space nowrap). */
export function phoneLink(number, label) {
  const digits = String(number).replace(/[^0-9]/g, "");
  return h("a", { className: "tel", href: "tel:" + digits, text: label || number });
}

/* Text as a fragment of text nodes, with every phone number in it made a `tel:` link. */
export function textWithLinks(text) {
  const fragment = document.createDocumentFragment();
  const source = String(text || "");
  let last = 0;
  for (const m of source.matchAll(PHONE)) {
    const start = m.index + m[1].length;
    const digits = m[2].replace(/[^0-9]/g, "").length;
    if (digits < 10 || digits > 11) continue;
    fragment.appendChild(document.createTextNode(source.slice(last, start)));
    fragment.appendChild(phoneLink(m[2]));
    last = start + m[2].length;
  }
  fragment.appendChild(document.createTextNode(source.slice(last)));
  return fragment;
}
