"""The report page's frame: its HTML template, its style and the little script that sorts the table."""

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; media-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>{title}</title><style>{css}</style></head>
<body><header><h1>{title}</h1><p>Written {when} by genlab {version}. Everything is inside this file: it opens
offline. Runs fold away under their names; the table compares them all.</p></header>
<nav><h2>Runs</h2><ol class="index">{index}</ol></nav>
<section id="comparison"><h2>Comparison</h2>{table}</section>
{extra}<main>{runs}</main>
<script>{script}</script></body></html>
"""

CSS = """
:root{--fg:#1d2330;--muted:#5c6577;--line:#d9dde5;--bg:#f6f7f9;--accent:#2456a6}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--fg);
background:var(--bg)}header,nav,#comparison,main{max-width:1280px;margin:0 auto;padding:8px 20px}
h1{font-size:22px;margin:18px 0 4px}h2{font-size:18px;margin:12px 0 8px}h3{font-size:15px;margin:18px 0 6px;
color:var(--accent)}h4{font-size:13px;margin:12px 0 4px;color:var(--muted)}header p,.note{color:var(--muted)}
.index{list-style:none;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(210px,1fr));gap:8px}
.index a{display:grid;grid-template-columns:96px 1fr;grid-template-rows:auto auto auto;column-gap:8px;padding:6px;
background:#fff;border:1px solid var(--line);border-radius:6px;color:inherit;text-decoration:none;min-height:60px}
.index a:hover{border-color:var(--accent)}.index img{grid-row:1/4;width:96px}.index b{overflow-wrap:anywhere}
.index span{color:var(--muted);font-size:12px}
.scroll{overflow:auto;max-height:80vh;border:1px solid var(--line);border-radius:6px;background:#fff}
table.sortable{border-collapse:separate;border-spacing:0;font-variant-numeric:tabular-nums;white-space:nowrap}
.sortable th,.sortable td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:right}
.sortable th{position:sticky;top:0;background:#eef1f6;cursor:pointer;user-select:none;vertical-align:bottom;z-index:1}
.sortable th small{display:block;font-weight:normal;color:var(--muted);font-size:11px}
.sortable th:first-child,.sortable td:first-child{position:sticky;left:0;background:#fff;text-align:left;z-index:2}
.sortable th:first-child{background:#eef1f6;z-index:3}.sortable td:nth-child(-n+6),.sortable th:nth-child(-n+6){text-align:left}
.sortable th[aria-sort=ascending]::after{content:" ▲"}.sortable th[aria-sort=descending]::after{content:" ▼"}
.sortable tbody tr:hover td{background:#f0f5ff}td.na{color:#aab}
section.run{background:#fff;border:1px solid var(--line);border-radius:6px;margin:10px 0;padding:4px 14px}
summary{cursor:pointer;display:flex;gap:14px;align-items:baseline;flex-wrap:wrap}summary h2{display:inline;margin:8px 0}
summary .head{color:var(--muted)}.config{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
table.kv{border-collapse:collapse;font-size:12px}table.kv caption{text-align:left;font-weight:600;color:var(--muted)}
table.kv th{text-align:left;font-weight:normal;color:var(--muted);padding:1px 8px 1px 0}table.kv td{padding:1px 0}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:8px}
figure{margin:6px 0}figure.plot{margin:0}figcaption{color:var(--muted);font-size:12px;max-width:900px}
svg.plot{width:100%;height:auto;background:#fff}.pt{font-size:11px;font-weight:600}.pa{font-size:9px;fill:#667}
.pn{font-size:11px;fill:#999}.pf{fill:#fbfcfe;stroke:#dde}.pg{stroke:#e4e7ee}
img{image-rendering:pixelated;max-width:100%}ol.lines{font-family:ui-monospace,monospace;background:#fafbfc;
padding:6px 6px 6px 36px;border:1px solid var(--line);border-radius:4px;max-width:900px}ol.lines li.end{color:var(--accent)}
.none{color:var(--muted);font-style:italic}
#extra{max-width:1280px;margin:0 auto;padding:8px 20px}pre.text{overflow:auto;background:#fff;padding:8px;
border:1px solid var(--line);border-radius:6px;font-size:12px}
"""

SCRIPT = """
(function(){
  // Sort the comparison table by a column: numbers by value, text by name; a missing figure always last.
  document.querySelectorAll('table.sortable').forEach(function(table){
    table.querySelectorAll('th').forEach(function(th, col){
      th.addEventListener('click', function(){
        var up = th.getAttribute('aria-sort') !== 'ascending';
        table.querySelectorAll('th').forEach(function(h){ h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', up ? 'ascending' : 'descending');
        var num = th.dataset.type === 'num' || th.dataset.type === undefined;
        var rows = Array.prototype.slice.call(table.tBodies[0].rows);
        rows.sort(function(a, b){
          var x = a.cells[col], y = b.cells[col];
          var vx = x.dataset.v, vy = y.dataset.v;
          if (vx !== undefined || vy !== undefined) {
            if (vx === undefined) return 1;
            if (vy === undefined) return -1;
            return (up ? 1 : -1) * (parseFloat(vx) - parseFloat(vy));
          }
          var tx = x.textContent, ty = y.textContent;
          if (tx === '—' && ty !== '—') return 1;
          if (ty === '—' && tx !== '—') return -1;
          return (up ? 1 : -1) * tx.localeCompare(ty, undefined, {numeric: true});
        });
        rows.forEach(function(r){ table.tBodies[0].appendChild(r); });
      });
    });
  });
  // A link to a run opens its folded section.
  function openTarget(){
    var el = location.hash && document.getElementById(location.hash.slice(1));
    if (el) { var d = el.querySelector('details'); if (d) d.open = true; }
  }
  window.addEventListener('hashchange', openTarget); openTarget();
})();
"""
