/*
 * MAMIS ヘルプデスク chat widget loader.
 *
 * Embed with one tag (options are data- attributes, see docs/widget.md):
 *   <script src="https://HOST/widget.js" defer></script>
 *
 * The launcher button lives in an open shadow root so the host page's CSS
 * cannot restyle it (the host may still theme it through the documented
 * --mamis-helpdesk-* custom properties, which inherit into the shadow tree).
 * The chat itself runs in an iframe served by the help desk, so its script,
 * storage and API calls stay on the help desk's origin. The two sides talk
 * only through postMessage, and each checks the other's origin and window.
 *
 * Vanilla JS, no dependencies and no build step: this file is served as is.
 */
(function () {
  "use strict";

  var NS = "mamis-helpdesk";
  if (window.__mamisHelpdeskWidget) return; // the tag was included twice
  window.__mamisHelpdeskWidget = true;

  var script = document.currentScript ||
    document.querySelector('script[src$="/widget.js"], script[src*="/widget.js?"]');
  if (!script || !script.src) return;

  var scriptUrl = new URL(script.src, location.href);
  var FRAME_ORIGIN = scriptUrl.origin;
  // Everything is relative to where widget.js was served, so a help desk
  // mounted under a path prefix works too.
  var BASE = FRAME_ORIGIN + scriptUrl.pathname.replace(/\/widget\.js$/, "");
  var OPEN_KEY = NS + ":open";
  var OPEN_HASH = "#" + NS + "-chat"; // a page address ending in it opens the chat (after /login)
  var READY_GRACE_MS = 1500; // after the iframe's load event, before showing the fallback

  var data = script.dataset;
  var options = {
    title: (data.title || "").trim() || "MAMIS ヘルプデスク",
    label: (data.label || "").trim() || "質問する",
    position: data.position === "left" ? "left" : "right",
    accent: validColour(data.accent),
    open: data.open !== undefined && data.open !== "false" && data.open !== "0"
  };

  function validColour(value) {
    value = (value || "").trim();
    return value && window.CSS && CSS.supports("color", value) ? value : "";
  }

  var CSS_TEXT = [
    ":host {",
    "  all: initial;",
    "  --_accent: var(--mamis-helpdesk-accent, var(--_data-accent, #1f5fa6));",
    "  --_accent-text: var(--mamis-helpdesk-accent-text, var(--_data-accent-text, #ffffff));",
    "  --_focus: var(--mamis-helpdesk-focus, #1a1a1a);",
    "  --_offset-x: var(--mamis-helpdesk-offset-x, 20px);",
    "  --_offset-y: var(--mamis-helpdesk-offset-y, 20px);",
    "  --_z: var(--mamis-helpdesk-z-index, 2147483000);",
    "  --_w: var(--mamis-helpdesk-panel-width, 380px);",
    "  --_h: var(--mamis-helpdesk-panel-height, 620px);",
    "  --_radius: var(--mamis-helpdesk-radius, 12px);",
    "  --_font: var(--mamis-helpdesk-font, system-ui, -apple-system, 'Hiragino Sans', 'Hiragino Kaku Gothic ProN', 'Noto Sans JP', 'Yu Gothic UI', Meiryo, sans-serif);",
    "}",
    ".launcher {",
    "  position: fixed; bottom: var(--_offset-y); z-index: var(--_z);",
    "  display: inline-flex; align-items: center; gap: 8px;",
    "  min-height: 52px; padding: 0 20px 0 16px; margin: 0;",
    "  border: 2px solid var(--_accent-text); border-radius: 999px;",
    "  background: var(--_accent); color: var(--_accent-text);",
    "  font: 700 15px/1.2 var(--_font); letter-spacing: 0.02em;",
    "  box-shadow: 0 4px 14px rgba(0, 0, 0, 0.28); cursor: pointer;",
    "}",
    ".launcher:hover { filter: brightness(1.08); }",
    ".launcher:focus { outline: none; }",
    ".launcher:focus-visible { outline: 3px solid var(--_focus); outline-offset: 3px; box-shadow: 0 0 0 6px #ffffff; }",
    ".right { right: var(--_offset-x); } .left { left: var(--_offset-x); }",
    ".launcher svg { width: 24px; height: 24px; flex: none; }",
    ".badge {",
    "  position: absolute; top: -6px; right: -6px; min-width: 22px; height: 22px; padding: 0 6px;",
    "  box-sizing: border-box; border-radius: 11px; border: 2px solid #ffffff;",
    "  background: #b3261e; color: #ffffff; font: 700 12px/18px var(--_font); text-align: center;",
    "}",
    ".badge[hidden] { display: none; }",
    ".panel {",
    "  position: fixed; z-index: var(--_z); box-sizing: border-box;",
    "  bottom: calc(var(--_offset-y) + 64px);",
    "  width: var(--_w); height: var(--_h);",
    "  max-width: calc(100vw - 2 * var(--_offset-x));",
    "  max-height: calc(100vh - var(--_offset-y) - 84px);",
    "  border-radius: var(--_radius); overflow: hidden; background: #ffffff;",
    "  box-shadow: 0 10px 40px rgba(0, 0, 0, 0.3);",
    "}",
    ".panel[hidden] { display: none; }",
    ".panel iframe { display: block; width: 100%; height: 100%; border: 0; margin: 0; color-scheme: normal; }",
    ".fallback { margin: 0; padding: 24px; font: 15px/1.7 var(--_font); color: #1a1a1a; }",
    "@media (max-width: 480px) {",
    "  .panel { inset: 0; width: 100%; height: 100%; max-width: none; max-height: none; border-radius: 0; }",
    "  .panel { height: 100dvh; }",
    "  :host(.is-open) .launcher { display: none; }",
    "}",
    "@media (prefers-reduced-motion: no-preference) { .launcher { transition: filter 0.15s; } }"
  ].join("\n");

  var ICON_CHAT = "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6.5a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z";
  var ICON_CLOSE = "M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12l5.6 5.6-1.4 1.4-5.6-5.6L6.4 19 5 17.6l5.6-5.6L5 6.4z";

  /* Built with DOM calls rather than innerHTML, so a host page enforcing Trusted Types still works. */
  function svgIcon(d) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("fill", "currentColor");
    path.setAttribute("d", d);
    svg.appendChild(path);
    return svg;
  }

  function sessionGet(key) {
    try { return sessionStorage.getItem(key); } catch (e) { return null; }
  }
  function sessionSet(key, value) {
    try { sessionStorage.setItem(key, value); } catch (e) { /* storage disabled: just forget */ }
  }

  /* Pick black or white text for a background, whichever contrasts more (WCAG luminance). */
  function textColourFor(el) {
    var m = getComputedStyle(el).backgroundColor.match(/[\d.]+/g);
    if (!m || m.length < 3) return "#ffffff";
    var lum = [0, 1, 2].map(function (i) {
      var c = Number(m[i]) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    var l = 0.2126 * lum[0] + 0.7152 * lum[1] + 0.0722 * lum[2];
    return (1.05 / (l + 0.05)) >= ((l + 0.05) / 0.05) ? "#ffffff" : "#111111";
  }

  function mount() {
    var host = document.createElement("mamis-helpdesk-widget");
    host.setAttribute("data-position", options.position);
    if (options.accent) host.style.setProperty("--_data-accent", options.accent);
    var root = host.attachShadow({ mode: "open" });

    if (root.adoptedStyleSheets !== undefined && window.CSSStyleSheet && "replaceSync" in CSSStyleSheet.prototype) {
      // Constructed sheets are not blocked by a host page's style-src CSP.
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS_TEXT);
      root.adoptedStyleSheets = [sheet];
    } else {
      var style = document.createElement("style");
      style.textContent = CSS_TEXT;
      root.appendChild(style);
    }

    var panel = document.createElement("div");
    panel.className = "panel " + options.position;
    panel.id = "mamis-helpdesk-panel";
    panel.hidden = true;

    var launcher = document.createElement("button");
    launcher.type = "button";
    launcher.className = "launcher " + options.position;
    launcher.setAttribute("aria-controls", panel.id);
    launcher.setAttribute("aria-expanded", "false");
    var icon = document.createElement("span");
    icon.setAttribute("aria-hidden", "true");
    icon.style.display = "inline-flex";
    var text = document.createElement("span");
    var badge = document.createElement("span");
    badge.className = "badge";
    badge.setAttribute("aria-hidden", "true");
    badge.hidden = true;
    launcher.append(icon, text, badge);

    root.append(launcher, panel);
    document.body.appendChild(host);
    // The default accent is dark enough for white text; a host's colour may not be.
    if (options.accent) host.style.setProperty("--_data-accent-text", textColourFor(launcher));

    var iframe = null;
    var frameReady = false;
    var isOpen = false;
    var unread = 0;
    var pendingFocus = false; // focus the input once the frame is ready

    function renderLauncher() {
      icon.replaceChildren(svgIcon(isOpen ? ICON_CLOSE : ICON_CHAT));
      text.textContent = isOpen ? "閉じる" : options.label;
      launcher.setAttribute("aria-expanded", String(isOpen));
      var name = isOpen ? options.title + "を閉じる" : options.title + "を開く";
      if (!isOpen && unread > 0) name += "（未読 " + unread + " 件）";
      launcher.setAttribute("aria-label", name);
      badge.textContent = String(unread);
      badge.hidden = isOpen || unread === 0;
      host.classList.toggle("is-open", isOpen);
    }

    function tellFrame(type, extra) {
      if (!iframe || !iframe.contentWindow) return;
      var message = { source: NS, type: type };
      for (var k in extra || {}) message[k] = extra[k];
      iframe.contentWindow.postMessage(message, FRAME_ORIGIN);
    }

    function ensureFrame() {
      if (iframe) return;
      var params = new URLSearchParams({
        origin: location.origin,
        title: options.title,
        accent: getComputedStyle(launcher).backgroundColor
      });
      iframe = document.createElement("iframe");
      iframe.title = options.title + " チャット";
      iframe.src = BASE + "/widget/frame?" + params.toString();
      iframe.addEventListener("load", function () {
        // A frame refused by frame-ancestors (origin not allowed) still fires
        // load, with an error page inside; it never says "ready".
        setTimeout(function () { if (!frameReady) showFallback(); }, READY_GRACE_MS);
      });
      panel.appendChild(iframe);
    }

    function showFallback() {
      if (panel.querySelector(".fallback")) return;
      var p = document.createElement("p");
      p.className = "fallback";
      p.setAttribute("role", "alert");
      p.textContent = "チャットを表示できませんでした。時間をおいて再度お試しください。" +
        "解決しない場合は、このページのアドレスがヘルプデスクの許可リストに登録されているか、管理者にご確認ください。";
      if (iframe) iframe.hidden = true;
      panel.appendChild(p);
    }

    function open(focus) {
      ensureFrame();
      isOpen = true;
      unread = 0;
      panel.hidden = false;
      renderLauncher();
      sessionSet(OPEN_KEY, "1");
      pendingFocus = !!focus;
      if (focus) iframe.focus();
      if (frameReady) tellFrame("open", { focus: pendingFocus });
    }

    function close(returnFocus) {
      isOpen = false;
      panel.hidden = true;
      renderLauncher();
      sessionSet(OPEN_KEY, "0");
      tellFrame("close");
      if (returnFocus) launcher.focus();
    }

    launcher.addEventListener("click", function () {
      if (isOpen) close(true); else open(true);
    });
    root.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && isOpen) close(true);
    });

    window.addEventListener("message", function (event) {
      if (!iframe || event.source !== iframe.contentWindow || event.origin !== FRAME_ORIGIN) return;
      var msg = event.data;
      if (!msg || typeof msg !== "object" || msg.source !== NS) return;
      switch (msg.type) {
        case "ready":
          frameReady = true;
          var fallback = panel.querySelector(".fallback");
          if (fallback) { fallback.remove(); iframe.hidden = false; }
          tellFrame(isOpen ? "open" : "close", { focus: isOpen && pendingFocus });
          break;
        case "close":
          close(true);
          break;
        case "unread":
          unread = isOpen ? 0 : Math.max(0, Number(msg.count) || 0);
          renderLauncher();
          break;
      }
    });

    renderLauncher();
    if (location.hash === OPEN_HASH) {
      // Back from the help desk's /login page: open the chat where the visitor was, and drop the mark.
      history.replaceState(history.state, "", location.pathname + location.search);
      open(true);
    } else if (options.open || sessionGet(OPEN_KEY) === "1") {
      open(false);
    }
  }

  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
