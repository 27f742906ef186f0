// The unread count in a page's header ({% inbox_badge %}): asked of the same origin every minute
// and whenever the tab comes back; other scripts ask for a refresh with the "inbox:refresh" event.
(function () {
  "use strict";
  const link = document.getElementById("inbox-badge");
  const count = document.getElementById("inbox-unread");
  if (!link || !count) return;
  const url = link.dataset.unreadUrl;
  async function refresh() {
    try {
      const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!answer.ok) return;
      const { unread } = await answer.json();
      count.textContent = String(unread);
      count.hidden = unread === 0;
      link.title = unread ? `站内消息：${unread}条未读` : "站内消息";
    } catch (_) {
      // Offline or signed out: keep what the page showed.
    }
  }
  setInterval(refresh, 60000);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  window.addEventListener("inbox:refresh", refresh);
})();
