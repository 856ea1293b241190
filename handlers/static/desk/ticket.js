// Ticket page: insert a saved reply or a knowledge-base link at the cursor of the reply box. Without
// script the two pickers stay hidden and the page works as plain forms.
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
