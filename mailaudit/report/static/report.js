/* mailaudit auditor's report: optional filters and search. The page is complete without this
   script; it only shows the toolbar, hides entries that do not match, and opens every <details>
   before printing (and closes them again afterwards). */
(function () {
  "use strict";
  var bar = document.getElementById("toolbar");
  if (!bar) { return; }
  var boxes = Array.prototype.slice.call(bar.querySelectorAll("input[type=checkbox][data-outcome]"));
  var search = bar.querySelector("input[type=search]");
  var status = bar.querySelector(".status");
  var items = Array.prototype.slice.call(document.querySelectorAll("[data-filter-item]"));
  var texts = items.map(function (el) { return el.textContent.toLowerCase(); });

  function apply() {
    var wanted = {};
    boxes.forEach(function (box) { wanted[box.getAttribute("data-outcome")] = box.checked; });
    var query = search.value.trim().toLowerCase();
    var shown = 0;
    items.forEach(function (el, i) {
      var ok = wanted[el.getAttribute("data-outcome")] !== false && (!query || texts[i].indexOf(query) !== -1);
      el.classList.toggle("filtered-out", !ok);
      if (ok) { shown += 1; }
    });
    status.textContent = shown + " of " + items.length + " shown";
  }

  function setAll(open) {
    document.querySelectorAll("details").forEach(function (d) { d.open = open; });
  }

  bar.hidden = false;
  boxes.forEach(function (box) { box.addEventListener("change", apply); });
  search.addEventListener("input", apply);
  bar.querySelector("[data-action=expand]").addEventListener("click", function () { setAll(true); });
  bar.querySelector("[data-action=collapse]").addEventListener("click", function () { setAll(false); });

  var openedForPrint = [];
  window.addEventListener("beforeprint", function () {
    openedForPrint = Array.prototype.slice.call(document.querySelectorAll("details:not([open])"));
    openedForPrint.forEach(function (d) { d.open = true; });
  });
  window.addEventListener("afterprint", function () {
    openedForPrint.forEach(function (d) { d.open = false; });
    openedForPrint = [];
  });
  apply();
}());
