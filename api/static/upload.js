/* Upload progress for the documents page. The form works without this script: it is a plain
   multipart POST. With it, the same form is sent by XMLHttpRequest so a <progress> bar can
   follow the bytes, and a screen reader hears the progress at each quarter (politely). On
   success the browser goes where the server redirected; on a refusal the page's main part is
   replaced by the one the server drew (the form, with what is wrong beside the field). */
(function () {
  "use strict";

  function say(form, text) {
    var status = form.querySelector("#upload-status");
    if (status) { status.textContent = text; }
  }

  function fileError(form, input, text) {
    var error = form.querySelector("#file-error");
    if (!error) {
      error = document.createElement("p");
      error.className = "field-error";
      error.id = "file-error";
      input.parentNode.insertBefore(error, input);
    }
    error.textContent = text;
    input.setAttribute("aria-invalid", "true");
    var described = (input.getAttribute("aria-describedby") || "").split(" ");
    if (described.indexOf("file-error") < 0) {
      described.push("file-error");
      input.setAttribute("aria-describedby", described.join(" ").trim());
    }
    input.focus();
  }

  function swapMain(received) {
    var fresh = received && received.querySelector("main");
    var main = document.querySelector("main");
    if (!fresh || !main) { return false; }
    main.innerHTML = fresh.innerHTML;
    start();
    var first = main.querySelector("[aria-invalid=true]") || main.querySelector(".error") || main;
    if (first === main || first.classList.contains("error")) { main.focus(); } else { first.focus(); }
    return true;
  }

  function enhance(form) {
    var input = form.querySelector("input[type=file]");
    var box = form.querySelector("#upload-progress-box");
    var bar = form.querySelector("progress");
    var button = form.querySelector("button[type=submit]");
    if (!input || !bar || !box || !window.FormData || !window.XMLHttpRequest) { return; }

    form.addEventListener("submit", function (event) {
      var file = input.files && input.files[0];
      if (!file) { return; }  // the server says what is missing, beside the field
      var limit = Number(form.getAttribute("data-max-bytes"));
      event.preventDefault();
      if (limit && file.size > limit) {
        fileError(form, input, form.getAttribute("data-too-large"));
        return;
      }
      var request = new XMLHttpRequest();
      var told = -1;
      request.open("POST", form.action);
      request.responseType = "document";
      request.upload.onprogress = function (progress) {
        if (!progress.lengthComputable) { return; }
        var percent = Math.floor(progress.loaded * 100 / progress.total);
        bar.value = percent;
        var quarter = Math.floor(percent / 25);
        if (quarter !== told) {
          told = quarter;
          say(form, form.getAttribute("data-progress").replace("{percent}", percent + "%"));
        }
      };
      request.upload.onload = function () {
        bar.value = 100;
        say(form, form.getAttribute("data-done"));
      };
      request.onload = function () {
        if (request.status >= 200 && request.status < 300 && request.responseURL) {
          window.location.assign(request.responseURL);
          return;
        }
        if (!swapMain(request.response)) { failed(); }
      };
      request.onerror = failed;
      request.onabort = failed;
      function failed() {
        button.disabled = false;
        box.hidden = true;
        say(form, form.getAttribute("data-failed"));
      }
      box.hidden = false;
      bar.value = 0;
      button.disabled = true;
      request.send(new FormData(form));
    });
  }

  function start() {
    var form = document.getElementById("upload-form");
    if (form) { enhance(form); }
  }

  start();
}());
