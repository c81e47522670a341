/* ecodemo report: a small dependency-free SVG chart renderer (line with band, bars, scatter)
   with hover/touch values. Reads its data from <script id="ecodemo-data">. No network. */
"use strict";
(function () {
  var NS = "http://www.w3.org/2000/svg";
  var COLORS = ["#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e", "#17becf",
                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"];
  var drawn = 0;
  var LANG = "fr", LOCALE = "fr-FR", NODATA = "–";

  function svgEl(tag, attrs, parent) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) { e.setAttribute(k, attrs[k]); }
    if (parent) { parent.appendChild(e); }
    return e;
  }
  /* 3 significant figures, the page's language conventions, never scientific notation */
  function fmt(v) {
    if (v === null || v === undefined || isNaN(v)) { return "–"; }
    if (v === 0) { return "0"; }
    var digits = Math.max(0, 2 - Math.floor(Math.log10(Math.abs(v))));
    return (+v.toPrecision(3)).toLocaleString(LOCALE, {maximumFractionDigits: Math.min(digits, 20)});
  }
  /* times in Europe/Paris, as the page's readers live them */
  function fmtTime(ms) {
    return new Date(ms).toLocaleString(LOCALE, {timeZone: "Europe/Paris", day: "numeric",
      month: "short", hour: "2-digit", minute: "2-digit"});
  }
  function fmtDay(ms) {
    return new Date(ms).toLocaleDateString(LOCALE, {timeZone: "Europe/Paris", day: "numeric",
      month: "short"});
  }
  function niceTicks(lo, hi, n) {
    if (hi === lo) { hi = lo + 1; }
    var step = Math.pow(10, Math.floor(Math.log10((hi - lo) / n)));
    var err = (hi - lo) / n / step;
    step *= err >= 7.5 ? 10 : err >= 3.5 ? 5 : err >= 1.5 ? 2 : 1;
    var out = [];
    // from the tick at or below lo to the tick at or above hi: no value drawn off the axes
    for (var v = Math.floor(lo / step + 1e-9) * step; v <= hi + step * 1e-9; v += step) { out.push(v); }
    if (out[out.length - 1] < hi - step * 1e-9) { out.push(out[out.length - 1] + step); }
    return out;
  }
  function scale(d0, d1, r0, r1, log) {
    if (log) {
      var l0 = Math.log10(d0), l1 = Math.log10(d1);
      return function (v) { return r0 + (Math.log10(v) - l0) / ((l1 - l0) || 1) * (r1 - r0); };
    }
    return function (v) { return r0 + (v - d0) / ((d1 - d0) || 1) * (r1 - r0); };
  }
  function frame(el, spec) {
    el.innerHTML = "";
    var box = document.createElement("div");
    box.className = "plot";
    el.appendChild(box);
    var svg = svgEl("svg", {viewBox: "0 0 640 280", role: "img",
                            "aria-label": spec.title || "chart"}, box);
    var tip = document.createElement("div");
    tip.className = "tip";
    box.appendChild(tip);
    return {svg: svg, tip: tip, box: box, W: 640, H: 280,
            m: {l: 60, r: 14, t: 10, b: spec.xCategories ? 70 : 30}};
  }
  function axes(f, xs, ys, xTicks, xLabel, yTicks, yUnit) {
    var g = svgEl("g", {"class": "axis"}, f.svg);
    yTicks.forEach(function (v) {
      var y = ys(v);
      svgEl("line", {x1: f.m.l, x2: f.W - f.m.r, y1: y, y2: y, "class": "gridline"}, g);
      svgEl("text", {x: f.m.l - 6, y: y + 4, "text-anchor": "end"}, g).textContent = fmt(v);
    });
    xTicks.forEach(function (v) {
      var t = svgEl("text", {x: xs(v), y: f.H - f.m.b + 16, "text-anchor": "middle"}, g);
      t.textContent = xLabel(v);
    });
    if (yUnit) {
      svgEl("text", {x: 4, y: f.m.t + 8, "class": "unit"}, g).textContent = yUnit;
    }
  }
  function legend(el, items) {
    var ul = document.createElement("ul");
    ul.className = "legend";
    items.forEach(function (it) {
      var li = document.createElement("li");
      var sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = it.color;
      li.appendChild(sw);
      li.appendChild(document.createTextNode(it.name));
      ul.appendChild(li);
    });
    el.appendChild(ul);
  }
  function showTip(f, html, px) {
    f.tip.innerHTML = html;
    f.tip.style.display = "block";
    var left = Math.min(Math.max(px - 80, 0), f.box.clientWidth - 170);
    f.tip.style.left = left + "px";
  }
  function nearest(points, x) {
    var lo = 0, hi = points.length - 1;
    if (hi < 0) { return null; }
    while (hi - lo > 1) { var mid = (lo + hi) >> 1; if (points[mid][0] < x) { lo = mid; } else { hi = mid; } }
    return Math.abs(points[lo][0] - x) <= Math.abs(points[hi][0] - x) ? points[lo] : points[hi];
  }
  function done(el) { el.setAttribute("data-drawn", "1"); drawn += 1; }

  /* spec: {series: [{name, points: [[x, y]], dash}], band: {name, points: [[x, lo, hi]]},
            unit, xTime: true} */
  function lineChart(el, spec) {
    var f = frame(el, spec);
    var all = [];
    spec.series.forEach(function (s) { s.points.forEach(function (p) { all.push(p); }); });
    var band = spec.band && spec.band.points.length ? spec.band.points : [];
    band.forEach(function (p) { all.push([p[0], p[1]]); all.push([p[0], p[2]]); });
    all = all.filter(function (p) { return p[1] !== null; });
    if (!all.length) { el.textContent = NODATA; done(el); return; }
    var x0 = Math.min.apply(null, all.map(function (p) { return p[0]; }));
    var x1 = Math.max.apply(null, all.map(function (p) { return p[0]; }));
    var yv = all.map(function (p) { return p[1]; });
    var yTicks = niceTicks(Math.min(0, Math.min.apply(null, yv)), Math.max.apply(null, yv), 5);
    var xs = scale(x0, x1, f.m.l, f.W - f.m.r);
    var ys = scale(yTicks[0], yTicks[yTicks.length - 1], f.H - f.m.b, f.m.t);
    var xt = [0, 1, 2, 3].map(function (i) { return x0 + (x1 - x0) * (i + 0.5) / 4; });
    axes(f, xs, ys, xt, fmtDay, yTicks, spec.unit);
    if (band.length) {
      var d = band.map(function (p, i) { return (i ? "L" : "M") + xs(p[0]) + " " + ys(p[2]); }).join("");
      for (var i = band.length - 1; i >= 0; i--) { d += "L" + xs(band[i][0]) + " " + ys(band[i][1]); }
      svgEl("path", {d: d + "Z", "class": "band"}, f.svg);
    }
    var items = [];
    spec.series.forEach(function (s, k) {
      var color = s.color || COLORS[k % COLORS.length];
      var d = "", pen = false;
      s.points.forEach(function (p) {
        if (p[1] === null) { pen = false; return; }
        d += (pen ? "L" : "M") + xs(p[0]).toFixed(1) + " " + ys(p[1]).toFixed(1);
        pen = true;
      });
      var path = svgEl("path", {d: d, stroke: color, "class": "line"}, f.svg);
      if (s.dash) { path.setAttribute("stroke-dasharray", "6 4"); }
      if (s.points.length < 60) {
        s.points.forEach(function (p) {
          if (p[1] !== null) { svgEl("circle", {cx: xs(p[0]), cy: ys(p[1]), r: 3, fill: color}, f.svg); }
        });
      }
      items.push({name: s.name, color: color});
    });
    if (band.length) { items.push({name: spec.band.name, color: "rgba(31,119,180,0.25)"}); }
    var cursor = svgEl("line", {y1: f.m.t, y2: f.H - f.m.b, "class": "cursor"}, f.svg);
    var hit = svgEl("rect", {x: f.m.l, y: f.m.t, width: f.W - f.m.l - f.m.r,
                             height: f.H - f.m.t - f.m.b, "class": "hit"}, f.svg);
    function move(ev) {
      var r = f.svg.getBoundingClientRect();
      var sx = (ev.clientX - r.left) / r.width * f.W;
      var x = x0 + (sx - f.m.l) / (f.W - f.m.l - f.m.r) * (x1 - x0);
      var rows = [];
      var at = null;
      spec.series.forEach(function (s, k) {
        var p = nearest(s.points, x);
        if (p) { at = at === null ? p[0] : at; rows.push("<b style='color:" + (s.color || COLORS[k % COLORS.length]) + "'>" + s.name + "</b>: " + fmt(p[1])); }
      });
      var b = nearest(band, x);
      if (b) { at = at === null ? b[0] : at; rows.push(spec.band.name + ": " + fmt(b[1]) + " – " + fmt(b[2])); }
      if (at === null) { return; }
      cursor.setAttribute("x1", xs(at)); cursor.setAttribute("x2", xs(at));
      cursor.style.display = "block";
      showTip(f, "<div>" + (spec.xDays ? fmtDay(at) : fmtTime(at)) + "</div>" + rows.join("<br>"), (ev.clientX - r.left));
    }
    hit.addEventListener("pointermove", move);
    hit.addEventListener("pointerdown", move);
    hit.addEventListener("pointerleave", function () { f.tip.style.display = "none"; cursor.style.display = "none"; });
    legend(el, items);
    done(el);
  }

  /* spec: {categories: [..], series: [{name, values: [..]}], unit} */
  function barChart(el, spec) {
    spec.xCategories = true;
    var f = frame(el, spec);
    var vals = [];
    spec.series.forEach(function (s) { s.values.forEach(function (v) { if (v !== null) { vals.push(v); } }); });
    if (!vals.length) { el.textContent = NODATA; done(el); return; }
    var yTicks = niceTicks(Math.min(0, Math.min.apply(null, vals)), Math.max.apply(null, vals), 5);
    var ys = scale(yTicks[0], yTicks[yTicks.length - 1], f.H - f.m.b, f.m.t);
    var n = spec.categories.length, w = (f.W - f.m.l - f.m.r) / n;
    var bw = w * 0.8 / spec.series.length;
    axes(f, function () { return 0; }, ys, [], function () { return ""; }, yTicks, spec.unit);
    spec.categories.forEach(function (c, i) {
      var t = svgEl("text", {x: f.m.l + w * (i + 0.5), y: f.H - f.m.b + 14, "text-anchor": "end",
                             transform: "rotate(-25 " + (f.m.l + w * (i + 0.5)) + " " + (f.H - f.m.b + 14) + ")",
                             "class": "cat"}, f.svg);
      t.textContent = c.length > 26 ? c.slice(0, 25) + "…" : c;
    });
    var items = [];
    spec.series.forEach(function (s, k) {
      var color = s.color || COLORS[k % COLORS.length];
      s.values.forEach(function (v, i) {
        if (v === null) { return; }
        var y0 = ys(Math.max(0, yTicks[0])), y = ys(v);
        var bar = svgEl("rect", {x: f.m.l + w * i + w * 0.1 + bw * k, y: Math.min(y, y0), width: bw,
                                 height: Math.max(1, Math.abs(y0 - y)), fill: color, "class": "bar"}, f.svg);
        function show(ev) {
          var r = f.svg.getBoundingClientRect();
          showTip(f, "<div>" + spec.categories[i] + "</div><b>" + s.name + "</b>: " + fmt(v) + " " + (spec.unit || ""),
                  ev.clientX - r.left);
        }
        bar.addEventListener("pointermove", show);
        bar.addEventListener("pointerdown", show);
        bar.addEventListener("pointerleave", function () { f.tip.style.display = "none"; });
      });
      items.push({name: s.name, color: color});
    });
    legend(el, items);
    done(el);
  }

  /* spec: {points: [{x, y, label, note}], xUnit, yUnit, logX} */
  function scatterChart(el, spec) {
    var f = frame(el, spec);
    var pts = spec.points.filter(function (p) { return p.x !== null && p.y !== null && (!spec.logX || p.x > 0); });
    if (!pts.length) { el.textContent = NODATA; done(el); return; }
    var xv = pts.map(function (p) { return p.x; }), yv = pts.map(function (p) { return p.y; });
    var x0 = Math.min.apply(null, xv), x1 = Math.max.apply(null, xv);
    if (spec.logX) { x0 = Math.pow(10, Math.floor(Math.log10(x0))); x1 = Math.pow(10, Math.ceil(Math.log10(x1))); }
    var yTicks = niceTicks(0, Math.max.apply(null, yv) * 1.1, 5);  // room for the top label
    var xs = scale(x0, x1, f.m.l + 8, f.W - f.m.r - 8, spec.logX);
    var ys = scale(yTicks[0], yTicks[yTicks.length - 1], f.H - f.m.b, f.m.t);
    var xt = [];
    if (spec.logX) { for (var e = Math.log10(x0); e <= Math.log10(x1) + 1e-9; e++) { xt.push(Math.pow(10, e)); } }
    else { xt = niceTicks(x0, x1, 4); }
    axes(f, xs, ys, xt, function (v) { return fmt(v); }, yTicks, spec.yUnit);
    svgEl("text", {x: f.W - f.m.r, y: f.H - 2, "text-anchor": "end", "class": "unit"}, f.svg).textContent = spec.xUnit || "";
    var groups = {}, items = [], placed = [];
    pts.forEach(function (p) {
      if (!(p.group in groups)) { groups[p.group] = p.color || COLORS[items.length % COLORS.length]; items.push({name: p.group, color: groups[p.group]}); }
      var c = svgEl("circle", {cx: xs(p.x), cy: ys(p.y), r: 6, fill: groups[p.group], "class": "dot"}, f.svg);
      var right = xs(p.x) > f.W * 0.7, cx = xs(p.x), cy = ys(p.y);
      var label = svgEl("text", {"class": "dotlabel"}, f.svg);
      label.textContent = p.label;
      // labels of close rungs would print over each other: try each side of the dot, above then
      // below, then further down; a label that ends away from its dot gets a leader line
      function clash(b) {
        if (b.x < 0 || b.x + b.width > f.W) { return true; }  // cut by the chart's edge
        return placed.some(function (q) { return b.x < q.x + q.width && q.x < b.x + b.width &&
                                                 b.y < q.y + q.height && q.y < b.y + b.height; });
      }
      function put(side, dy) {
        label.setAttribute("x", cx + (side ? -9 : 9));
        label.setAttribute("y", cy + dy);
        label.setAttribute("text-anchor", side ? "end" : "start");
        return label.getBBox();
      }
      var box, spots = [[right, -6], [!right, -6], [right, 16], [!right, 16]], k = 0;
      for (; k < spots.length; k++) { box = put(spots[k][0], spots[k][1]); if (!clash(box)) { break; } }
      if (k === spots.length) {
        box = put(right, -6);
        for (var tries = 0; clash(box) && tries < 6; tries++) { box = put(right, -6 + (tries + 1) * box.height); }
        svgEl("line", {x1: cx, y1: cy, x2: right ? box.x + box.width : box.x, y2: box.y + box.height / 2,
                       "class": "leader"}, f.svg);
      }
      placed.push(box);
      function show(ev) {
        var r = f.svg.getBoundingClientRect();
        showTip(f, "<b>" + p.label + "</b><br>" + fmt(p.x) + " " + (spec.xUnit || "") + "<br>" + fmt(p.y) + " " + (spec.yUnit || "") + (p.note ? "<br>" + p.note : ""),
                ev.clientX - r.left);
      }
      c.addEventListener("pointermove", show);
      c.addEventListener("pointerdown", show);
      c.addEventListener("pointerleave", function () { f.tip.style.display = "none"; });
    });
    legend(el, items);
    done(el);
  }

  function selfTest() {
    var bad = [];
    document.querySelectorAll(".chart[data-drawn]").forEach(function (el, i) {
      var target = el.querySelector(".hit, .bar, .dot");
      if (!target) { return; }
      var r = target.getBoundingClientRect();
      var ev = new PointerEvent("pointermove", {clientX: r.left + r.width / 2, clientY: r.top + r.height / 2, bubbles: true});
      target.dispatchEvent(ev);
      var tip = el.querySelector(".tip");
      if (!tip || !tip.textContent) { bad.push(el.id || String(i)); }
    });
    document.body.setAttribute("data-selftest", bad.length ? "fail: " + bad.join(",") : "ok");
  }

  window.ecodemoCharts = {line: lineChart, bar: barChart, scatter: scatterChart};
  document.addEventListener("DOMContentLoaded", function () {
    var data = JSON.parse(document.getElementById("ecodemo-data").textContent);
    LANG = data.lang || "fr";
    LOCALE = LANG === "en" ? "en-GB" : "fr-FR";
    NODATA = (data.strings && data.strings["chart.nodata"]) || NODATA;
    document.querySelectorAll(".chart").forEach(function (el) {
      var spec = data.charts[el.id];
      if (!spec) { throw new Error("no data for chart " + el.id); }
      window.ecodemoCharts[spec.type](el, spec);
    });
    document.body.setAttribute("data-charts-drawn", String(drawn));
    if (location.hash === "#selftest") { selfTest(); }
  });
})();
