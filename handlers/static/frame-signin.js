/*
 * Staff sign-in inside the chat (「職員ログイン」), the account bar, and signing out.
 *
 * Signing in or out starts a new conversation, so a staff member's lookups never mix with an
 * anonymous conversation. The frame remembers who was signed in when it last looked: a sign-in
 * made elsewhere (the /login page, another tab) is confirmed in the chat the next time it opens.
 */
import { NS, $, h, safeUrl, store, apiBase } from "./frame-util.js";
import { account, api, applySession, defaultMessage, onSession, refreshSession } from "./frame-api.js";

const STORE_ACCOUNT = NS + ":account";
const SIGN_IN_BLOCKED = "この埋め込み表示ではログインを保てません（ブラウザが他サイト内の Cookie を保存しないため）。" +
  "ヘルプデスクのページを直接開いてログインしてください。";

const ui = {
  log: $("log"), composer: document.querySelector(".composer"),
  bar: $("account-bar"), status: $("account-status"), open: $("sign-in-open"), signOut: $("sign-out"),
  panel: $("sign-in"), form: $("sign-in-form"), id: $("sign-in-id"), password: $("sign-in-password"),
  error: $("sign-in-error"), submit: $("sign-in-submit"), cancel: $("sign-in-cancel")
};

function nameOf(staff) { return staff.display_name || staff.login_id; }

function renderAccount() {
  ui.bar.hidden = !account.known;
  const staff = account.staff;
  ui.status.textContent = staff ? "職員ログイン中：" + nameOf(staff) : "";
  ui.open.hidden = !!staff;
  ui.signOut.hidden = !staff;
}

/* A sentence for the chat when the signed-in staff member is not the one this frame last saw
   (null when nothing changed); remembers the new one. */
export function accountChange() {
  const now = account.staff ? account.staff.login_id : null;
  const before = store.get(STORE_ACCOUNT);
  if (!account.known || now === before) return null;
  store.set(STORE_ACCOUNT, now);
  return account.staff ? nameOf(account.staff) + "としてログインしました。" : "ログアウトしました。";
}

function showSignIn(on) {
  ui.panel.hidden = !on;
  ui.log.hidden = on;
  ui.composer.hidden = on;
  if (on) {
    ui.error.textContent = "";
    ui.password.value = "";
    ui.id.focus();
  }
}

/* The help desk page around this frame (when it is on the help desk's own origin), to come back
   to after signing in on /login. */
function returnPath() {
  try {
    const page = new URL(document.referrer);
    if (page.origin === new URL(apiBase || location.origin, location.href).origin) return page.pathname + page.search;
  } catch (e) { /* no referrer */ }
  return null;
}

function signInBlocked() {
  ui.error.textContent = SIGN_IN_BLOCKED;
  const back = returnPath();
  const link = safeUrl("/login" + (back ? "?next=" + encodeURIComponent(back) : ""));
  if (link && !ui.panel.querySelector(".sign-in-help")) {
    ui.form.appendChild(h("p", { className: "sign-in-help" }, [
      h("a", { href: link, target: "_blank", rel: "noopener", text: "ヘルプデスクのログインページを開く" })
    ]));
  }
}

/* restart(notice): start a new conversation whose welcome carries `notice`. */
export function initSignIn(restart) {
  onSession(renderAccount);

  ui.open.addEventListener("click", () => showSignIn(true));
  ui.cancel.addEventListener("click", () => {
    showSignIn(false);
    ui.open.focus();
  });

  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    const loginId = ui.id.value.trim();
    const password = ui.password.value;
    if (!loginId || !password) {
      ui.error.textContent = "ログインIDとパスワードを入力してください。";
      (loginId ? ui.password : ui.id).focus();
      return;
    }
    ui.submit.disabled = true;
    ui.error.textContent = "";
    const ready = account.csrfToken ? Promise.resolve() : refreshSession();
    ready.then(() => api("POST", "/api/session", { login_id: loginId, password }))
      .then(() => refreshSession()) // did the browser keep the cookie? (not in a third-party frame)
      .then((data) => {
        if (!data || !data.signed_in) { signInBlocked(); return; }
        showSignIn(false);
        restart(accountChange());
      }, (err) => {
        if (err && err.code === "csrf_failed") signInBlocked();
        else ui.error.textContent = (err && err.message) || defaultMessage(0);
        ui.password.value = "";
        ui.password.focus();
      }).finally(() => { ui.submit.disabled = false; });
  });

  ui.signOut.addEventListener("click", () => {
    ui.signOut.disabled = true;
    api("DELETE", "/api/session").then(applySession, () => refreshSession())
      .then(() => restart(accountChange()))
      .finally(() => { ui.signOut.disabled = false; });
  });
}
