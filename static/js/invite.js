// The invite link is /invite/#<token>: browsers never send the fragment, so the token stays
// out of request lines and access logs. Move it into the form's field, take it out of the
// address bar and the history, and send the form (a POST body, never logged).
(function () {
  "use strict";
  var form = document.getElementById("invite-form");
  var token = window.location.hash.replace(/^#/, "");
  if (!form || !token || document.getElementById("invite-problem")) { return; }
  var field = form.querySelector('input[name="token"]');
  if (!field) { return; }
  window.history.replaceState(null, "", window.location.pathname + window.location.search);
  field.value = token;
  field.type = "hidden";
  form.hidden = true;
  var opening = document.getElementById("invite-opening");
  if (opening) { opening.hidden = false; }
  form.submit();
})();
