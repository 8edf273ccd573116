"use strict";
// Sorting and filtering only: the page reads the same without this script.
document.documentElement.classList.add("js");
document.querySelectorAll("table.sortable").forEach(function (table) {
  var headings = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(headings, function (th, column) {
    th.tabIndex = 0;
    function sort() {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(headings, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.filter.call(body.rows, function (r) { return !r.classList.contains("empty"); });
      function key(row) {
        var v = row.cells[column].getAttribute("data-sort");
        return v === null ? row.cells[column].textContent : v;
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        var nx = x === "" ? NaN : Number(x), ny = y === "" ? NaN : Number(y);
        var c;
        if (!isNaN(nx) && !isNaN(ny)) { c = nx - ny; }
        else if (isNaN(nx) !== isNaN(ny) && (x === "" || y === "")) { c = x === "" ? 1 : -1; return c; }
        else { c = x.localeCompare(y); }
        return ascending ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
  });
});
document.querySelectorAll("input[data-filter]").forEach(function (input) {
  var table = document.getElementById(input.getAttribute("data-filter"));
  input.addEventListener("input", function () {
    var needle = input.value.toLowerCase();
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      row.hidden = needle !== "" && row.textContent.toLowerCase().indexOf(needle) < 0;
    });
  });
});
