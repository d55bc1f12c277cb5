// The re-wrap progress page: reads the run's counts every second and moves the bar; when the
// run ends, reloads the page to show its result. Without this script the page has a Refresh
// button, so nothing depends on it.
"use strict";
(function () {
  var box = document.getElementById("rewrap-progress");
  if (!box) { return; }
  var bar = document.getElementById("rewrap-bar");
  var done = document.getElementById("rewrap-done");
  var total = document.getElementById("rewrap-total");
  var url = box.getAttribute("data-progress-url");
  function tick() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (!s) { return; }
        bar.max = s.total > 0 ? s.total : 1;
        bar.value = s.done;
        done.textContent = String(s.done);
        total.textContent = String(s.total);
        if (s.status === "running" || s.status === "stopping") {
          window.setTimeout(tick, 1000);
        } else {
          window.location.reload();
        }
      })
      .catch(function () { window.setTimeout(tick, 3000); });
  }
  window.setTimeout(tick, 500);
})();
