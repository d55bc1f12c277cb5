// The officer's upload form (/officer/<department>/issue): a progress bar while the file is
// sent, from XMLHttpRequest's upload progress. Without this script (or without XHR) the form
// simply posts, as it always works.
(function () {
  "use strict";

  function attach() {
    var form = document.querySelector("form.officer-upload");
    if (!form || !window.XMLHttpRequest || !window.FormData || !window.DOMParser) {
      return;
    }
    form.addEventListener("submit", function (event) {
      var box = form.querySelector(".officer-progress");
      var bar = form.querySelector("progress");
      var status = form.querySelector("#upload-status");
      var button = form.querySelector("button[type=submit]");
      if (!box || !bar || !status) {
        return;
      }
      event.preventDefault();
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      box.hidden = false;
      if (button) {
        button.disabled = true;
      }
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) {
          var percent = Math.round((100 * e.loaded) / e.total);
          bar.value = percent;
          status.textContent = percent + "%";
        }
      });
      xhr.addEventListener("load", function () {
        // Issued: the server sent us on to the page that says so; go there.
        if (xhr.status === 200 && xhr.responseURL && xhr.responseURL !== form.action) {
          window.location.assign(xhr.responseURL);
          return;
        }
        // Refused: show the page the server drew, errors beside the fields.
        var page = new DOMParser().parseFromString(xhr.responseText, "text/html");
        document.title = page.title;
        document.body.replaceWith(document.adoptNode(page.body));
        var main = document.getElementById("main");
        if (main) {
          main.focus();
        }
        attach();
      });
      xhr.addEventListener("error", function () {
        form.submit(); // the network failed the script: let the browser post the plain form
      });
      xhr.send(new FormData(form));
    });
  }

  attach();
})();
