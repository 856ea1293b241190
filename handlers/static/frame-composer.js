/*
 * The composer: Enter sends (never while an input method is converting), Shift + Enter makes a
 * new line, the remaining-character count, and up to three matching questions suggested while
 * typing (↓ / ↑ choose, Enter or a click asks, Escape hides).
 */
import { $, h, charCount } from "./frame-util.js";
import { api } from "./frame-api.js";
import { submit, MAX_CHARS } from "./frame-outbox.js";

const COUNTER_FROM = 1800; // show the remaining count from here on
const SUGGEST_DELAY_MS = 250;
const SUGGEST_MIN_CHARS = 2;
const SUGGEST_MAX = 3;

const ui = {
  form: $("composer"), input: $("input"), suggestions: $("suggestions"), counter: $("counter"), error: $("form-error")
};

export function showError(text) { ui.error.textContent = text || ""; }

/* Send a text as the visitor's message; a refusal (too long) is shown under the input. */
export function submitText(text) {
  const problem = submit(text);
  if (problem) showError(problem);
  else if (problem === null) showError("");
  return problem === null;
}

/* ---------- IME-safe Enter, counter ---------- */

let composing = false;
let compositionJustEnded = false;

export function isImeKey(event) {
  return event.isComposing || event.keyCode === 229 || composing || compositionJustEnded;
}

export function updateCounter() {
  const n = charCount(ui.input.value);
  const left = MAX_CHARS - n;
  ui.counter.classList.toggle("is-over", left < 0);
  if (n < COUNTER_FROM) ui.counter.textContent = "";
  else if (left >= 0) ui.counter.textContent = "残り " + left + " 文字";
  else ui.counter.textContent = -left + " 文字オーバーしています（" + MAX_CHARS + " 文字まで）";
}

/* An empty composer: no text, count, suggestions or error. */
export function clearComposer() {
  ui.input.value = "";
  updateCounter();
  hideSuggestions();
  showError("");
}

function submitFromInput() {
  const value = ui.input.value;
  if (!value.trim()) { ui.input.focus(); return; }
  cancelSuggest();
  if (submitText(value)) {
    ui.input.value = "";
    updateCounter();
    hideSuggestions();
  }
  ui.input.focus();
}

/* ---------- suggest as you type ---------- */

let suggestTimer = null;
let suggestSeq = 0;
let suggestions = [];
let activeIndex = -1;

function suggestionsShown() { return !ui.suggestions.hidden && suggestions.length > 0; }

function cancelSuggest() {
  clearTimeout(suggestTimer);
  suggestSeq += 1; // drop answers still on their way
}

function scheduleSuggest() {
  cancelSuggest();
  const q = ui.input.value.trim();
  if (charCount(q) < SUGGEST_MIN_CHARS || charCount(q) > 200) { hideSuggestions(); return; }
  const seq = suggestSeq;
  suggestTimer = setTimeout(() => {
    api("GET", "/api/suggest?q=" + encodeURIComponent(q)).then((data) => {
      if (seq !== suggestSeq || composing) return;
      showSuggestions(((data && data.suggestions) || []).slice(0, SUGGEST_MAX));
    }, () => {
      if (seq === suggestSeq) hideSuggestions(); // suggestions are a nicety; stay quiet
    });
  }, SUGGEST_DELAY_MS);
}

function showSuggestions(list) {
  suggestions = list.filter((s) => s && (s.question || s.title));
  activeIndex = -1;
  ui.input.removeAttribute("aria-activedescendant");
  ui.suggestions.textContent = "";
  if (!suggestions.length) { hideSuggestions(); return; }
  suggestions.forEach((s, i) => {
    ui.suggestions.appendChild(h("li", {
      id: "suggestion-" + i, role: "option", "aria-selected": "false", className: "suggestion",
      onmousedown(event) { event.preventDefault(); }, // keep focus in the textarea
      onclick() { chooseSuggestion(i); }
    }, [
      h("span", { className: "suggestion-question", text: s.question || s.title }),
      s.title && s.question ? h("span", { className: "suggestion-title", text: s.title }) : null
    ]));
  });
  ui.suggestions.hidden = false;
}

export function hideSuggestions() {
  suggestions = [];
  activeIndex = -1;
  ui.suggestions.hidden = true;
  ui.suggestions.textContent = "";
  ui.input.removeAttribute("aria-activedescendant");
}

function moveActive(step) {
  const n = suggestions.length;
  activeIndex = activeIndex < 0 ? (step > 0 ? 0 : n - 1) : (activeIndex + step + n) % n;
  Array.prototype.forEach.call(ui.suggestions.children, (li, i) => {
    li.setAttribute("aria-selected", String(i === activeIndex));
  });
  ui.input.setAttribute("aria-activedescendant", "suggestion-" + activeIndex);
}

function chooseSuggestion(i) {
  const s = suggestions[i];
  if (!s) return;
  cancelSuggest();
  hideSuggestions();
  if (submitText(s.question || s.title)) {
    ui.input.value = "";
    updateCounter();
  }
  ui.input.focus();
}

/* ---------- events ---------- */

ui.input.addEventListener("compositionstart", () => {
  composing = true;
  cancelSuggest();
});
ui.input.addEventListener("compositionend", () => {
  composing = false;
  // Safari fires keydown(Enter) right after compositionend for the Enter that
  // committed the conversion; ignore keys until this task has finished.
  compositionJustEnded = true;
  setTimeout(() => { compositionJustEnded = false; }, 0);
  scheduleSuggest();
});

ui.input.addEventListener("keydown", (event) => {
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

ui.input.addEventListener("input", () => {
  updateCounter();
  if (ui.error.textContent && charCount(ui.input.value) <= MAX_CHARS) showError("");
  if (!composing) scheduleSuggest();
});

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  submitFromInput();
});
