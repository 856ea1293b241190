// The desk queue updates itself: every few seconds it fetches the server-rendered rows and counts for
// the same filters, puts them in place and shows the number of new tickets in the tab title. It
// pauses while the tab is hidden and stops when the session has ended (the next reload signs in).
const POLL_MS = 5000;
const rows = document.getElementById("queue-rows");
const status = document.getElementById("queue-status");
const baseTitle = document.title.replace(/^\(\d+\) /, "");
let timer = null;

async function refresh() {
  timer = null;
  if (document.hidden) return;
  let response;
  try {
    response = await fetch(rows.dataset.src, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" });
  } catch {
    schedule();
    return;
  }
  if (response.status === 401) {
    status.textContent = "ログインの有効期限が切れました。ページを再読み込みしてログインしてください。";
    return;
  }
  if (response.ok) {
    const data = await response.json();
    rows.innerHTML = data.rows; // rendered and escaped by the server's templates
    for (const el of document.querySelectorAll("#state-tabs .count")) {
      const n = data.counts[el.dataset.state];
      if (n !== undefined) el.textContent = String(n);
    }
    status.textContent = `${data.total}件`;
    document.title = (data.new ? `(${data.new}) ` : "") + baseTitle;
  }
  schedule();
}

function schedule() {
  if (timer === null && !document.hidden) timer = setTimeout(refresh, POLL_MS);
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) refresh();
});
if (rows) schedule();
