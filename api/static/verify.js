/* The verifier page's camera: read the QR code in the browser and send its text through the
   paste form, so the server gives the verdict exactly as for pasted text. Without this script
   (or without a camera) the page still works: upload and paste are plain forms.

   The decoding is qr-scanner's (served from /static/vendor): the browser's own BarcodeDetector
   where it has one, else its worker, which it starts from a blob: URL (the page's CSP allows
   worker-src blob: for that). The words shown come from the page, already translated. */
(function () {
  "use strict";
  var section = document.getElementById("camera");
  var form = document.getElementById("paste-form");
  var field = document.getElementById("payload");
  if (!section || !form || !field || typeof window.QrScanner === "undefined") return;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;

  var start = document.getElementById("camera-start");
  var stop = document.getElementById("camera-stop");
  var frame = section.querySelector(".camera-frame");
  var video = document.getElementById("camera-view");
  var status = document.getElementById("camera-status");
  var scanner = null;
  var sent = false;

  function say(key) {
    status.textContent = section.dataset[key] || "";
  }

  /* The middle of the picture, as large as the camera gives up to 720 pixels a side: a
     transfer order's code has up to 81 modules and needs 3 pixels or more each. */
  function region(v) {
    var side = Math.round(0.8 * Math.min(v.videoWidth, v.videoHeight));
    var scaled = Math.min(side, 720);
    return {
      x: Math.round((v.videoWidth - side) / 2),
      y: Math.round((v.videoHeight - side) / 2),
      width: side,
      height: side,
      downScaledWidth: scaled,
      downScaledHeight: scaled
    };
  }

  function shown(running) {
    start.hidden = running;
    stop.hidden = !running;
    frame.hidden = !running;
  }

  function halt() {
    if (scanner) {
      scanner.stop();
      scanner.destroy();
      scanner = null;
    }
    shown(false);
  }

  function found(result) {
    var text = typeof result === "string" ? result : result.data;
    if (sent || !text) return;
    sent = true;
    halt();
    say("found");
    field.value = text;
    if (form.requestSubmit) form.requestSubmit();
    else form.submit();
  }

  start.addEventListener("click", function () {
    if (scanner) return;
    say("starting");
    shown(true);
    scanner = new window.QrScanner(video, found, {
      returnDetailedScanResult: true,
      preferredCamera: "environment",
      maxScansPerSecond: 8,
      calculateScanRegion: region,
      onDecodeError: function () {} /* no code in this frame yet: keep looking */
    });
    scanner.start().then(
      function () {
        say("scanning");
      },
      function () {
        halt();
        say("failed");
      }
    );
  });
  stop.addEventListener("click", function () {
    halt();
    status.textContent = "";
    start.focus();
  });
  window.addEventListener("pagehide", halt);

  window.QrScanner.hasCamera().then(function (has) {
    if (has) section.hidden = false;
  });
})();
