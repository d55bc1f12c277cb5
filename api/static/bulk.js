// The bulk issue progress page (/officer/<department>/bulk/<job>): reads the job's counts every
// second and moves the bar; when the job ends, reloads the page to show every line's outcome.
// Without this script the page has a Refresh button, so nothing depends on it.
"use strict";
(function () {
  var box = document.getElementById("bulk-progress");
  if (!box) { return; }
  var bar = document.getElementById("bulk-bar");
  var done = document.getElementById("bulk-done");
  var total = document.getElementById("bulk-total");
  var url = box.getAttribute("data-progress-url");
  var seen = -1;
  function tick() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (!s) { return; }
        bar.max = s.total > 0 ? s.total : 1;
        bar.value = s.done;
        if (s.done !== seen) {
          seen = s.done;
          done.textContent = String(s.done);
          total.textContent = String(s.total);
        }
        if (s.status === "running") {
          window.setTimeout(tick, 1000);
        } else {
          window.location.reload();
        }
      })
      .catch(function () { window.setTimeout(tick, 3000); });
  }
  window.setTimeout(tick, 500);
})();
