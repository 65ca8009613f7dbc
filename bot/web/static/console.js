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
    region.setAttribute("data-shown", region.innerHTML);
    window.setInterval(function () {
      if (document.hidden) { return; }
      fetch(window.location.href, { credentials: "same-origin", headers: { "X-Refresh": "1" } })
        .then(function (answer) { return answer.ok ? answer.text() : null; })
        .then(function (html) {
          if (!html) { return; }
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(region.id);
          if (!fresh || fresh.innerHTML === region.getAttribute("data-shown")) { return; }
          region.setAttribute("data-shown", fresh.innerHTML);
          region.innerHTML = fresh.innerHTML;
          localTimes(region);
          // Announce the change once, briefly (not the whole table) to screen readers.
          var status = document.getElementById(region.getAttribute("data-status") || "");
          var count = region.querySelector(".count");
          if (status && count) { status.textContent = "Updated: " + count.textContent; }
        })
        .catch(function () { /* keep what is shown; the next tick tries again */ });
    }, seconds * 1000);
  }
  document.addEventListener("DOMContentLoaded", function () {
    // Before localTimes: a refresh compares the server's markup with the server's markup.
    document.querySelectorAll("[data-refresh][id]").forEach(refresh);
    localTimes(document);
  });
})();
