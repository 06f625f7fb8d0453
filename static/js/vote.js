// Keyboard voting: 1 left, 2 right, 3 tie, 4 both bad. Typing in the comment box is left alone.
// A second submit of the same page is dropped here; the server would store one vote anyway.
(function () {
  "use strict";
  var form = document.getElementById("vote-form");
  if (!form) { return; }
  var sent = false;
  form.addEventListener("submit", function (event) {
    if (sent) { event.preventDefault(); return; }
    sent = true;
    form.classList.add("sending");
  });
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT")) { return; }
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) { return; }
    var button = form.querySelector('button[data-key="' + event.key + '"]');
    if (button) {
      event.preventDefault();
      button.classList.add("pressed");
      form.requestSubmit(button);  // keeps the button's name/value in the form data
    }
  });
})();
