// Filters for report.html: plain JS, no library, no network.
// A result row is shown when its severity, family, status and deployment are all
// ticked and it contains the search text. The URL hash can preset filters, e.g.
// report.html#status=fail,error&family=tls, so a CI message can link to a view.
(function () {
  "use strict";
  var form = document.getElementById("filters");
  var rows = Array.prototype.slice.call(document.querySelectorAll("details.result"));
  var counter = document.getElementById("shown-count");
  var text = document.getElementById("filter-text");
  if (!form) { return; }

  function ticked(dim) {
    var boxes = form.querySelectorAll('input[data-filter="' + dim + '"]');
    var wanted = {};
    Array.prototype.forEach.call(boxes, function (b) { if (b.checked) { wanted[b.value] = true; } });
    return wanted;
  }

  function apply() {
    var dims = ["severity", "family", "status", "deployment"];
    var wanted = {};
    dims.forEach(function (d) { wanted[d] = ticked(d); });
    var needle = (text && text.value || "").toLowerCase();
    var shown = 0;
    rows.forEach(function (row) {
      var visible = dims.every(function (d) { return wanted[d][row.getAttribute("data-" + d)] === true; });
      if (visible && needle) { visible = row.textContent.toLowerCase().indexOf(needle) !== -1; }
      row.hidden = !visible;
      if (visible) { shown += 1; }
    });
    if (counter) { counter.textContent = shown + " of " + rows.length + " results shown"; }
  }

  function presetFromHash() {
    var hash = window.location.hash.replace(/^#/, "");
    if (!hash) { return; }
    hash.split("&").forEach(function (part) {
      var kv = part.split("=");
      if (kv.length !== 2) { return; }
      var dim = decodeURIComponent(kv[0]);
      var values = decodeURIComponent(kv[1]).split(",");
      var boxes = form.querySelectorAll('input[data-filter="' + dim + '"]');
      if (!boxes.length) { return; }
      Array.prototype.forEach.call(boxes, function (b) { b.checked = values.indexOf(b.value) !== -1; });
    });
  }

  function setOnly(dim, value) {
    var boxes = form.querySelectorAll('input[data-filter="' + dim + '"]');
    Array.prototype.forEach.call(boxes, function (b) { b.checked = b.value === value; });
  }

  // A cell of the families x deployments matrix shows exactly its results.
  Array.prototype.forEach.call(document.querySelectorAll("td.cell[data-family]"), function (cell) {
    cell.addEventListener("click", function () {
      setOnly("family", cell.getAttribute("data-family"));
      setOnly("deployment", cell.getAttribute("data-deployment"));
      apply();
      document.getElementById("results").scrollIntoView();
    });
  });

  // A deployment's name in the worst-first table shows all of its results.
  Array.prototype.forEach.call(document.querySelectorAll("td.dep-link[data-deployment]"), function (cell) {
    cell.addEventListener("click", function () {
      Array.prototype.forEach.call(form.querySelectorAll('input[data-filter="family"]'), function (b) { b.checked = true; });
      setOnly("deployment", cell.getAttribute("data-deployment"));
      apply();
      document.getElementById("results").scrollIntoView();
    });
  });

  var reset = document.getElementById("filter-reset");
  if (reset) {
    reset.addEventListener("click", function () {
      Array.prototype.forEach.call(form.querySelectorAll("input[data-filter]"), function (b) { b.checked = true; });
      if (text) { text.value = ""; }
      apply();
    });
  }

  form.addEventListener("change", apply);
  if (text) { text.addEventListener("input", apply); }
  form.addEventListener("submit", function (ev) { ev.preventDefault(); });
  window.addEventListener("hashchange", function () { presetFromHash(); apply(); });
  // Paper cannot expand a <details>: open every shown result before printing.
  window.addEventListener("beforeprint", function () {
    rows.forEach(function (row) { if (!row.hidden) { row.open = true; } });
    Array.prototype.forEach.call(document.querySelectorAll("details.toggle"), function (t) { t.open = true; });
  });
  presetFromHash();
  apply();
  document.documentElement.setAttribute("data-report-ready", "1");
})();
