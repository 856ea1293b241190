// Ticket page: insert a saved reply or a knowledge-base link at the cursor of the reply box, and count
// the reply against its channel's limit. Without script the two pickers stay hidden, there is no
// counter, and the page works as plain forms (the server refuses a reply that is too long).
const text = document.getElementById("reply-text");
const inserts = document.querySelector(".inserts");

function insertAtCursor(value) {
  const start = text.selectionStart ?? text.value.length;
  const end = text.selectionEnd ?? text.value.length;
  const before = text.value.slice(0, start);
  const gap = before && !before.endsWith("\n") ? "\n" : "";
  text.value = before + gap + value + text.value.slice(end);
  const at = (before + gap + value).length;
  text.focus();
  text.setSelectionRange(at, at);
  text.dispatchEvent(new Event("input"));  // the counter below counts what was inserted
}

if (text && inserts) {
  inserts.hidden = false;
  for (const button of inserts.querySelectorAll("button[data-insert]")) {
    button.addEventListener("click", () => {
      const select = document.getElementById(button.dataset.insert);
      if (select && select.value) insertAtCursor(select.value);
    });
  }
}

// The reply's length, counted as its channel counts (Telegram: UTF-16 code units, which is what a
// JavaScript string's length is; the web: characters). Over the limit, the reply button is held
// back with a Japanese message; the server checks the same rule (bot/desk/actions.py).
const counter = document.getElementById("reply-count");

function replyLength() {
  const value = text.value.replace(/\r\n/g, "\n").trim();
  return text.dataset.count === "utf16" ? value.length : [...value].length;
}

function showCount() {
  const limit = Number(text.dataset.limit);
  const used = replyLength();
  const telegram = text.dataset.count === "utf16";
  const unit = telegram ? "文字（Telegram の数え方：絵文字などは2文字）" : "文字";
  const over = used > limit;
  counter.textContent = over ? `${used} / ${limit}${unit}：${used - limit}文字多すぎます。短くするか、分けて送ってください。`
    : `${used} / ${limit}${unit}`;
  counter.classList.toggle("error", over);
  text.setCustomValidity(over ? `返信が長すぎます（${used} / ${limit}${unit}）。短くするか、分けて送ってください。` : "");
}

if (text && counter && text.dataset.limit) {
  text.addEventListener("input", showCount);
  showCount();
}
