/*
 * 役に立った／役に立たなかった under an answer, and what comes after 「役に立たなかった」.
 *
 * The feedback endpoint may answer with a reply of its own (the next step the core offers: other
 * articles, the desk); it is drawn as the help desk's next message. Without one, the visitor is
 * offered to ask again in other words or to contact the desk, never only a thank-you.
 */
import { $, h } from "./frame-util.js";
import { api } from "./frame-api.js";
import { currentConversation, submit, ESCALATE_TEXT } from "./frame-outbox.js";

const THANKS = "ご意見ありがとうございます。";

function nextStep() {
  const input = $("input");
  return h("div", { className: "feedback-next" }, [
    h("p", { className: "feedback-next-text", text: "お役に立てず申し訳ありません。言葉を変えてもう一度質問するか、担当者にお問い合わせください。" }),
    h("div", { className: "choices" }, [
      h("button", { type: "button", className: "choice-button", text: "言い換えて質問する",
        onclick() { input.focus(); } }),
      h("button", { type: "button", className: "choice-button", text: "担当者に問い合わせる",
        onclick() { submit(ESCALATE_TEXT); } })
    ])
  ]);
}

/* `showReply(reply)` draws a reply the endpoint returned as the next message of the log. */
export function renderFeedback(messageId, given, showReply) {
  const group = h("div", { className: "feedback", role: "group", "aria-label": "この回答は役に立ちましたか" });
  const thanks = h("span", { className: "feedback-thanks" });
  const buttons = [[true, "役に立った"], [false, "役に立たなかった"]].map(([helpful, label]) => h("button", {
    type: "button", className: "feedback-button", text: label, "aria-pressed": "false",
    onclick(event) { choose(helpful, event.currentTarget); }
  }));

  function lock(helpful) {
    buttons.forEach((b, i) => {
      b.setAttribute("aria-disabled", "true");
      b.disabled = true;
      b.setAttribute("aria-pressed", String((i === 0) === helpful));
    });
    thanks.textContent = THANKS;
  }

  function choose(helpful, button) {
    if (button.getAttribute("aria-disabled") === "true") return;
    buttons.forEach((b) => { b.disabled = true; b.setAttribute("aria-disabled", "true"); });
    thanks.textContent = "送信中…";
    const conv = currentConversation();
    api("POST", "/api/messages/" + encodeURIComponent(messageId) + "/feedback", { helpful },
      conv && conv.token
    ).then((data) => {
      lock(helpful);
      thanks.setAttribute("tabindex", "-1");
      thanks.focus(); // the pressed button is now disabled; keep focus nearby
      if (helpful) return;
      if (data && data.reply && typeof data.reply === "object") showReply(data.reply);
      else group.after(nextStep());
    }, (err) => {
      buttons.forEach((b) => { b.disabled = false; b.removeAttribute("aria-disabled"); });
      thanks.textContent = err.message;
    });
  }

  buttons.forEach((b) => group.appendChild(b));
  group.appendChild(thanks);
  if (given === true || given === false) lock(given);
  return group;
}
