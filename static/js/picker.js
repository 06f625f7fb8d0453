// The account picker on the annotators page: typing in the search box hides the accounts
// whose name does not contain the text. Without JavaScript every account is listed.
(function () {
  "use strict";
  document.querySelectorAll("[data-picker]").forEach(function (picker) {
    var search = picker.querySelector("[data-picker-search]");
    var empty = picker.querySelector("[data-picker-empty]");
    if (!search) { return; }
    var options = Array.prototype.slice.call(picker.querySelectorAll(".picker-option"));
    search.addEventListener("input", function () {
      var needle = search.value.trim().toLocaleLowerCase();
      var shown = 0;
      options.forEach(function (option) {
        var checked = option.querySelector("input").checked;
        var match = !needle || checked || option.textContent.toLocaleLowerCase().indexOf(needle) !== -1;
        option.hidden = !match;
        if (match) { shown += 1; }
      });
      if (empty) { empty.hidden = shown > 0; }
    });
  });
})();
