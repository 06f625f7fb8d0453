// A box that scrolls sideways (a wide table on a phone) is made reachable by keyboard, so
// that it can be scrolled without a mouse (WCAG 2.1.1; axe's scrollable-region-focusable).
(function () {
  "use strict";
  function mark() {
    document.querySelectorAll(".table-wrap, .card, .md table").forEach(function (box) {
      var scrolls = box.scrollWidth > box.clientWidth + 1;
      if (scrolls && !box.hasAttribute("tabindex")) {
        box.setAttribute("tabindex", "0");
        box.setAttribute("data-scrolls", "");
      } else if (!scrolls && box.hasAttribute("data-scrolls")) {
        box.removeAttribute("tabindex");
        box.removeAttribute("data-scrolls");
      }
    });
  }
  mark();
  window.addEventListener("resize", mark);
})();
