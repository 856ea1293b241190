// The ticket page shows new messages without a reload: it asks /desk/tickets/<n>/live with the newest
// message and audit event it shows, the server holds the request until there is something newer (the
// user's answer, another agent's reply or note) or 25 s have passed, and the page appends the
// server-rendered items (escaped by its templates) and asks again at once. It also names the other
// agents who have the ticket open, keeps the state shown current, and says so when the ticket was
// resolved or reopened elsewhere (the forms then need a reload). When the server answered at once
// with nothing (its waiting slots were all taken) or the request failed, it asks again after
// POLL_MS. It pauses while the tab is hidden.
const WAIT_S = 25;
const POLL_MS = 5000;
const thread = document.getElementById("thread");
const viewers = document.getElementById("viewers");
const stateNotice = document.getElementById("live-state");
// The states, their labels and which are unfinished are the server's (bot/desk/tickets.py): /live says them.
const activeAtLoad = thread.dataset.active === "true";
let timer = null;
let busy = false;

function showViewers(names) {
  viewers.hidden = !names.length;
  viewers.textContent = names.length ? `${names.join("、")} もこの問い合わせを開いています。` : "";
}

async function ask() {
  timer = null;
  if (document.hidden || busy) return;
  busy = true;
  const started = Date.now();
  let delay = POLL_MS;
  try {
    const url = `${thread.dataset.live}?after=${thread.dataset.after}&event=${thread.dataset.event}&wait=${WAIT_S}`;
    const response = await fetch(url, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" });
    if (response.status === 401) {
      stateNotice.hidden = false;
      stateNotice.textContent = "ログインの有効期限が切れました。ページを再読み込みしてログインしてください。";
      return;
    }
    if (response.ok) {
      const data = await response.json();
      if (data.items.trim()) {
        thread.insertAdjacentHTML("beforeend", data.items); // rendered and escaped by the server
        const empty = document.getElementById("thread-empty");
        if (empty) empty.remove();
      }
      thread.dataset.after = String(data.after);
      thread.dataset.event = String(data.event);
      showViewers(data.viewers || []);
      const badge = document.querySelector(".facts .badge");
      if (badge && data.state_ja) {
        badge.className = `badge badge-${data.state}`;
        badge.textContent = data.state_ja;
      }
      if (data.active !== activeAtLoad) {
        stateNotice.hidden = false;
        stateNotice.textContent = `この問い合わせは「${data.state_ja}」になりました。` +
          "操作する前にページを再読み込みしてください。";
      }
      const quickAndEmpty = !data.items.trim() && Date.now() - started < WAIT_S * 500;
      delay = quickAndEmpty ? POLL_MS : 0;
    }
  } catch {
    delay = POLL_MS; // offline for a moment
  } finally {
    busy = false;
  }
  schedule(delay);
}

function schedule(delay) {
  if (timer === null && !document.hidden) timer = setTimeout(ask, delay);
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) schedule(0);
});
if (thread && thread.dataset.live) schedule(0);
