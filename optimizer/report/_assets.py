"""The page's own CSS and JavaScript (Plotly's bundle is inlined separately)."""

from __future__ import annotations

__all__ = ["CSS", "SORT_JS"]

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1400px;
       padding: 0 24px 48px; color: #222; }
h1 { font-size: 1.6em; margin: 24px 0 4px; }
h2 { font-size: 1.25em; margin-top: 36px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
p.caption { color: #444; max-width: 1100px; margin: 4px 0 8px; }
.summary { color: #333; margin: 4px 0 12px; }
.message { background: #fff4d6; border-left: 4px solid #e0a800; padding: 8px 12px; margin: 6px 0; }
nav a { margin-right: 14px; }
table { border-collapse: collapse; font-size: 0.88em; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort="ascending"]::after { content: " \\25B2"; }
table.sortable th[aria-sort="descending"]::after { content: " \\25BC"; }
tr.best td { background: #e8f5e9; font-weight: 600; }
div.wide { overflow-x: auto; }
#pareto-table td { white-space: nowrap; }
#pareto-table td.command { white-space: normal; overflow-wrap: anywhere; min-width: 420px; }
code { font-size: 0.95em; }
td.source { color: #555; max-width: 700px; }
"""

# Click a header to sort by it (numbers by value); click again to reverse. Each cell carries its
# sort key in data-sort, so "0.9120 [0.90, 0.93]" sorts as 0.912.
SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var up = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.sort, y = b.cells[col].dataset.sort;
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
        return up ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""
