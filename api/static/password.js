/* Password fields. Each gets a "show password" button (ASVS 2.1.12); the field where a new
   password is chosen also gets a checklist of what the province's policy still wants and a
   strength estimate, both as the citizen types (ASVS 2.1.8).

   Progressive enhancement: without this script every field is a plain password input, the form
   posts as it always did, and the server lists what is wrong after submit. With it, the
   server's check is still the one that counts (it also refuses common passwords and the
   citizen's own details, which this page does not know). The words are the page's, drawn in
   the reader's language in <template id="password-aids">; the estimate is zxcvbn-ts, fetched
   from /static/vendor only once a new password is being typed (half a megabyte a login page
   need not carry), and until then, or if it cannot load, the checklist stands alone. */
(function () {
  "use strict";

  var MIN_LENGTH = 8;  // identity/passwords.py MIN_LENGTH
  var MIN_SCORE = 2;  // identity/passwords.py MIN_ZXCVBN_SCORE
  var SETTLE_MS = 400;  // the live summary waits for a pause in typing, not every keystroke
  var ESTIMATOR = [
    "/static/vendor/zxcvbn-ts-core.js",
    "/static/vendor/zxcvbn-ts-language-common.js"
  ];
  // As identity/passwords.py counts them: code points after NFKC, Unicode letter classes.
  var RULES = {
    length: function (p) { return Array.from(p).length >= MIN_LENGTH; },
    upper: function (p) { return /\p{Lu}/u.test(p); },
    lower: function (p) { return /\p{Ll}/u.test(p); },
    digit: function (p) { return /\p{Nd}/u.test(p); },
    special: function (p) { return /[^\p{L}\p{N}]/u.test(p); }
  };

  var estimator = null;
  var loading = false;
  var waiting = [];

  function estimatorReady() {
    var found = window.zxcvbnts;
    var common = found && found["language-common"];
    if (!found || !found.core || !common) { return; }
    estimator = new found.core.ZxcvbnFactory({
      dictionary: common.dictionary,
      graphs: common.adjacencyGraphs
    });
    waiting.forEach(function (then) { then(); });
    waiting = [];
  }

  function loadEstimator(then) {
    if (estimator) { return; }
    waiting.push(then);
    if (loading) { return; }
    loading = true;
    var left = ESTIMATOR.length;
    ESTIMATOR.forEach(function (src) {
      var script = document.createElement("script");
      script.src = src;
      script.async = false;  // in order: the dictionary after the engine
      script.addEventListener("load", function () {
        left -= 1;
        if (left === 0) { estimatorReady(); }
      });
      document.head.appendChild(script);
    });
  }

  function describedBy(input, id) {
    var ids = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    if (ids.indexOf(id) < 0) { ids.push(id); }
    input.setAttribute("aria-describedby", ids.join(" "));
  }

  function addReveal(input, aids) {
    var model = aids.content.querySelector("button.reveal");
    if (!model) { return null; }
    var button = model.cloneNode(true);
    var show = button.getAttribute("data-show");
    var hide = button.getAttribute("data-hide");
    button.setAttribute("aria-controls", input.id);
    button.addEventListener("click", function () {
      var masked = input.type === "password";
      input.type = masked ? "text" : "password";
      button.textContent = masked ? hide : show;
    });
    // A password is never sent, nor offered to a password manager, from a plain text field.
    if (input.form) {
      input.form.addEventListener("submit", function () {
        input.type = "password";
        button.textContent = show;
      });
    }
    input.insertAdjacentElement("afterend", button);
    return button;
  }

  function addMeter(input, after, aids) {
    var model = aids.content.querySelector(".password-meter");
    if (!model) { return; }
    var box = model.cloneNode(true);
    var items = Array.prototype.slice.call(box.querySelectorAll("[data-rule]"));
    var summary = box.querySelector(".password-needs");
    var strength = box.querySelector(".password-strength");
    var meter = box.querySelector("meter");
    var level = box.querySelector(".password-level");
    var timer = null;
    after.insertAdjacentElement("afterend", box);
    describedBy(input, summary.id);

    function score(password) {
      if (!estimator || !password) { return null; }
      return estimator.check(password).score;
    }

    function say(password, missing, estimate) {
      if (!password) { return ""; }
      if (missing.length) {
        return box.getAttribute("data-still") + " " + missing.join(box.getAttribute("data-separator"));
      }
      if (estimate !== null && estimate < MIN_SCORE) { return box.getAttribute("data-easy"); }
      return box.getAttribute("data-met");
    }

    function update() {
      var password = input.value.normalize("NFKC");
      var missing = [];
      items.forEach(function (item) {
        var met = password !== "" && RULES[item.getAttribute("data-rule")](password);
        item.classList.toggle("met", met);
        if (!met) { missing.push(item.textContent); }
      });
      var estimate = score(password);
      strength.hidden = estimate === null;
      if (estimate !== null) {
        meter.value = estimate;
        level.textContent = box.getAttribute("data-level-" + estimate);
      }
      window.clearTimeout(timer);
      timer = window.setTimeout(function () {
        summary.textContent = say(password, missing, estimate);
      }, SETTLE_MS);
    }

    input.addEventListener("input", function () {
      loadEstimator(update);
      update();
    });
    if (input.value) { loadEstimator(update); update(); }
  }

  function start() {
    var aids = document.getElementById("password-aids");
    if (!aids || !aids.content) { return; }
    var fields = document.querySelectorAll("input[type=password]");
    Array.prototype.forEach.call(fields, function (input) {
      var button = addReveal(input, aids);
      var chosen = input.name === "password" && input.autocomplete === "new-password";
      if (button && chosen) { addMeter(input, button, aids); }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
