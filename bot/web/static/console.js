// Ballast web console: progressive enhancement only; every page reads without it.
// 1. <time datetime=UTC> shown in the viewer's time zone (UTC stays in the title).
// 2. [data-refresh=N]: re-fetch the page every N seconds and swap that region in place.
"use strict";
(function () {
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when)) {
        el.textContent = when.toLocaleString(undefined, {
          year: "numeric", month: "short", day: "numeric",
          hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
        });
      }
    });
  }
  function refresh(region) {
    var seconds = parseInt(region.getAttribute("data-refresh"), 10);
    if (!(seconds > 0)) { return; }
    window.setInterval(function () {
      if (document.hidden) { return; }
      fetch(window.location.href, { credentials: "same-origin", headers: { "X-Refresh": "1" } })
        .then(function (answer) { return answer.ok ? answer.text() : null; })
        .then(function (html) {
          if (!html) { return; }
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(region.id);
          if (fresh) { region.innerHTML = fresh.innerHTML; localTimes(region); }
        })
        .catch(function () { /* keep what is shown; the next tick tries again */ });
    }, seconds * 1000);
  }
  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    document.querySelectorAll("[data-refresh][id]").forEach(refresh);
  });
})();
