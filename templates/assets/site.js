/* Hover boxes for footnotes and citations (mouse hover, keyboard focus, tap). No inline styles/eval. */
(function () {
  "use strict";
  var box = null;
  var owner = null;
  var hideTimer = null;
  var noHover = window.matchMedia && window.matchMedia("(hover: none)").matches;

  function targetOf(link) {
    var id = decodeURIComponent((link.getAttribute("href") || "").replace(/^#/, ""));
    return id ? document.getElementById(id) : null;
  }

  function ensureBox() {
    if (box) return box;
    box = document.createElement("div");
    box.id = "vw-hover-box";
    box.className = "hover-box";
    box.setAttribute("role", "tooltip");
    box.hidden = true;
    box.addEventListener("mouseenter", function () { clearTimeout(hideTimer); });
    box.addEventListener("mouseleave", scheduleHide);
    document.body.appendChild(box);
    return box;
  }

  function show(link) {
    var target = targetOf(link);
    if (!target) return;
    clearTimeout(hideTimer);
    var b = ensureBox();
    var clone = target.cloneNode(true);
    clone.querySelectorAll(".footnote-backref").forEach(function (el) { el.remove(); });
    clone.querySelectorAll("[id]").forEach(function (el) { el.removeAttribute("id"); });
    b.innerHTML = "";
    while (clone.firstChild) b.appendChild(clone.firstChild);
    b.hidden = false;
    if (owner && owner !== link) owner.removeAttribute("aria-describedby");
    owner = link;
    link.setAttribute("aria-describedby", b.id);
    var r = link.getBoundingClientRect();
    var width = Math.min(360, document.documentElement.clientWidth - 16);
    var left = Math.max(8, Math.min(r.left + window.scrollX - width / 2,
      document.documentElement.clientWidth - width - 8 + window.scrollX));
    b.style.width = width + "px";  /* CSSOM, allowed under style-src 'self' */
    b.style.left = left + "px";
    b.style.top = (r.bottom + window.scrollY + 6) + "px";
  }

  function hide() {
    if (box) box.hidden = true;
    if (owner) owner.removeAttribute("aria-describedby");
    owner = null;
  }

  function scheduleHide() {
    clearTimeout(hideTimer);
    hideTimer = setTimeout(hide, 200);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var links = document.querySelectorAll("a.footnote-ref, a.cite");
    links.forEach(function (link) {
      link.addEventListener("mouseenter", function () { show(link); });
      link.addEventListener("mouseleave", scheduleHide);
      link.addEventListener("focus", function () { show(link); });
      link.addEventListener("blur", scheduleHide);
      link.addEventListener("click", function (ev) {
        // Touch screens: the first tap opens the box, a second tap follows the link.
        if (noHover && owner !== link) { ev.preventDefault(); show(link); }
      });
    });
    document.addEventListener("keydown", function (ev) { if (ev.key === "Escape") hide(); });
    document.addEventListener("click", function (ev) {
      if (box && !box.hidden && !box.contains(ev.target) && ev.target !== owner) hide();
    });
  });
})();
