// Keyboard shortcuts on an item page: a = accept, n = next item, p = play/pause, c = correct, r = reject.
(function () {
  "use strict";
  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }
  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || typing(document.activeElement)) return;
    var key = event.key.toLowerCase();
    if (key === "a") {
      var accept = document.getElementById("accept-form");
      if (accept) { event.preventDefault(); accept.requestSubmit(); }
    } else if (key === "n") {
      var next = document.getElementById("next-link");
      if (next) { event.preventDefault(); window.location.href = next.href; }
    } else if (key === "p") {
      var player = document.getElementById("player");
      if (player) { event.preventDefault(); if (player.paused) { player.play(); } else { player.pause(); } }
    } else if (key === "c" || key === "r") {
      var field = document.querySelector(key === "c" ? "#correct-form input[type=text]" : "#reject-form textarea");
      if (field) { event.preventDefault(); field.focus(); }
    }
  });
})();
