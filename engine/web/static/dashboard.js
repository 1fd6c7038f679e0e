// The dispatcher's analytics page: draws the figures the server embedded
// in #initial (one analytics RESULT per figure, plus "heat": on_time
// grouped by h3): KPI tiles, charts (uPlot, window.uPlot), a heat map of
// the late rate over H3 cells (LastmileMap + Leaflet) and sortable tables.
// The filter form is a plain GET to /dashboard, so the URL is always the
// view. Text from the data (driver names, plan ids...) is set with
// textContent only; nothing becomes markup. Sets body[data-ready="1"] once
// everything is drawn.
(function () {
  'use strict';
  var root = document.getElementById('dashboard');
  if (!root) return;
  var form = document.getElementById('filters');
  var EMPTY = 'No finished stops in this range';
  var DASH = '–';

  // Okabe-Ito: distinguishable with the common colour-vision deficiencies.
  var COLORS = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#7a6a00', '#000000'];

  // ---------------------------------------------------------------------
  // Data

  function readInitial() {
    var el = document.getElementById('initial');
    if (!el) return {};
    try {
      var v = JSON.parse(el.textContent || '{}');
      if (typeof v === 'string') v = JSON.parse(v); // embedded as a JSON string
      return v && typeof v === 'object' ? v : {};
    } catch (e) {
      return {};
    }
  }

  function rowsOf(res) {
    return res && Array.isArray(res.rows) ? res.rows.filter(function (r) { return r && typeof r === 'object'; }) : [];
  }

  function num(v) {
    return typeof v === 'number' && isFinite(v) ? v : null;
  }

  // The view's query from the form: non-empty fields only.
  function viewParams() {
    var p = new URLSearchParams();
    if (!form) return p;
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.name && el.value !== '' && !el.disabled) p.set(el.name, el.value);
    });
    return p;
  }

  // ---------------------------------------------------------------------
  // Formatting

  var locale = undefined; // the browser's
  var nf0 = new Intl.NumberFormat(locale, {maximumFractionDigits: 0});
  var nf1 = new Intl.NumberFormat(locale, {minimumFractionDigits: 1, maximumFractionDigits: 1});
  var nf2 = new Intl.NumberFormat(locale, {maximumFractionDigits: 2});

  function fmtRate(v) { return v == null ? DASH : nf1.format(v * 100) + ' %'; }
  function pad2(n) { return n < 10 ? '0' + n : String(n); }
  // Seconds as m:ss (h:mm:ss from an hour).
  function fmtClock(s) {
    if (s == null) return DASH;
    var neg = s < 0;
    s = Math.round(Math.abs(s));
    var h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), r = s % 60;
    return (neg ? '−' : '') + (h ? h + ':' + pad2(m) : m) + ':' + pad2(r);
  }
  function fmtMin(s) { return s == null ? DASH : nf1.format(s / 60) + ' min'; }

  // How a column's values read, by its name.
  function kind(col) {
    if (col === 'group') return 'group';
    if (/_rate$|_coverage$/.test(col)) return 'rate';
    if (/_s$/.test(col)) return 'duration';
    if (/_m$/.test(col)) return 'metres';
    if (col === 'km' || col === 'co2_kg' || col === 'stops_per_hour') return 'decimal';
    return 'count';
  }

  function fmtCell(col, v) {
    if (v == null) return DASH;
    if (typeof v !== 'number') return String(v);
    switch (kind(col)) {
      case 'rate': return fmtRate(v);
      case 'duration': return fmtClock(v);
      case 'metres': return nf0.format(v);
      case 'decimal': return nf1.format(v);
      default: return v === Math.round(v) ? nf0.format(v) : nf2.format(v);
    }
  }

  var LABELS = {
    stops: 'Stops', on_time: 'On time', early: 'Early', late: 'Late',
    on_time_rate: 'On-time rate', early_rate: 'Early rate', late_rate: 'Late rate',
    late_mean_s: 'Lateness, mean', late_p50_s: 'Lateness P50', late_p90_s: 'Lateness P90', late_max_s: 'Lateness, max',
    shipments: 'Shipments', first_delivered: 'Delivered at first attempt', first_attempt_rate: 'First-attempt rate',
    attempts: 'Attempts', delivered: 'Delivered', failed: 'Failed', failed_rate: 'Failure rate',
    not_home: 'Not home', refused: 'Refused', address_not_found: 'Address not found', access: 'No access',
    damaged: 'Damaged', other: 'Other',
    drive_planned_s: 'Drive, planned', drive_actual_s: 'Drive, actual', service_planned_s: 'Service, planned',
    service_actual_s: 'Service, actual', wait_s: 'Wait', stops_per_hour: 'Stops per hour', km: 'Distance (km)',
    distance_per_stop_m: 'Distance per stop (m)', co2_kg: 'CO₂ (kg)',
    n_60: 'n 60 min', mae_60_s: 'MAE 60 min', p90_60_s: 'P90 60 min',
    n_30: 'n 30 min', mae_30_s: 'MAE 30 min', p90_30_s: 'P90 30 min',
    n_10: 'n 10 min', mae_10_s: 'MAE 10 min', p90_10_s: 'P90 10 min',
    window_n: 'Windows', window_coverage: 'In window', soon_n: '“Soon” sent',
    soon_lead_mean_s: '“Soon” lead, mean', soon_lead_p50_s: '“Soon” lead, P50',
    dead: 'Dead', pending: 'Pending', sent: 'Sent', skipped: 'Skipped', retries: 'Retries'
  };
  // Longer descriptions, shown as the headers' tooltips.
  var DESCR = {
    n_60: 'Predictions made 60 minutes before arrival', mae_60_s: 'Mean absolute error of the ETA 60 minutes before arrival',
    p90_60_s: '90th percentile of the ETA error 60 minutes before arrival',
    n_30: 'Predictions made 30 minutes before arrival', mae_30_s: 'Mean absolute error of the ETA 30 minutes before arrival',
    p90_30_s: '90th percentile of the ETA error 30 minutes before arrival',
    n_10: 'Predictions made 10 minutes before arrival', mae_10_s: 'Mean absolute error of the ETA 10 minutes before arrival',
    p90_10_s: '90th percentile of the ETA error 10 minutes before arrival',
    window_n: 'Stops with an announced window', window_coverage: 'Share of arrivals inside the announced window',
    soon_n: '“Arriving soon” notifications sent', soon_lead_mean_s: 'Time from “arriving soon” to arrival, mean',
    soon_lead_p50_s: 'Time from “arriving soon” to arrival, median',
    drive_planned_s: 'Planned driving time per stop (mean)', drive_actual_s: 'Actual driving time per stop (mean)',
    service_planned_s: 'Planned service time per stop (mean)', service_actual_s: 'Actual service time per stop (mean)',
    wait_s: 'Waiting time per stop (mean)'
  };
  var GROUPS = {day: 'Day', hour: 'Hour', weekday: 'Weekday', vehicle: 'Vehicle', driver: 'Driver',
    plan: 'Plan', h3: 'H3 cell', channel: 'Channel'};

  function colLabel(col, group) {
    if (col === 'group') return GROUPS[group] || 'Group';
    return LABELS[col] || col.replace(/_/g, ' ').replace(/^./, function (c) { return c.toUpperCase(); });
  }

  var dayFmt = new Intl.DateTimeFormat(locale, {day: 'numeric', month: 'short', timeZone: 'UTC'});
  // A group's label on a chart axis.
  function axisLabel(group, g) {
    if (g == null) return DASH;
    g = String(g);
    if (group === 'day' && /^\d{4}-\d{2}-\d{2}$/.test(g)) {
      var d = new Date(g + 'T00:00:00Z');
      if (!isNaN(d)) return dayFmt.format(d);
    }
    if (group === 'hour' && /^\d{1,2}$/.test(g)) return pad2(+g) + 'h';
    return g.length > 14 ? g.slice(0, 13) + '…' : g;
  }

  // Whether the group is ordered by the server (time), so that its
  // natural order is the rows' order.
  function timeGroup(group) { return group === 'day' || group === 'hour' || group === 'weekday'; }

  // ---------------------------------------------------------------------
  // KPI tiles

  function setKPI(id, value, note) {
    var el = document.getElementById('kpi-' + id);
    if (!el) return;
    el.querySelector('.kpi-value').textContent = value;
    el.querySelector('.kpi-note').textContent = note || '';
  }

  function drawKPIs(d) {
    var tot = function (f) { return (d[f] && d[f].total && typeof d[f].total === 'object') ? d[f].total : {}; };
    var ot = tot('on_time'), la = tot('lateness'), fa = tot('first_attempt'), eta = tot('eta_accuracy'), pr = tot('productivity');
    var stops = num(ot.stops) != null ? num(ot.stops) : num(pr.stops);
    setKPI('on_time_rate', fmtRate(num(ot.on_time_rate)),
      num(ot.late) != null ? nf0.format(ot.late) + ' late, ' + nf0.format(num(ot.early) || 0) + ' early' : '');
    setKPI('late_p90_s', fmtMin(num(la.late_p90_s)),
      num(la.late_p50_s) != null ? 'P50 ' + fmtMin(la.late_p50_s) + ' of late stops' : '');
    setKPI('first_attempt_rate', fmtRate(num(fa.first_attempt_rate)),
      num(fa.shipments) != null ? 'of ' + nf0.format(fa.shipments) + ' shipments' : '');
    setKPI('mae_30_s', fmtMin(num(eta.mae_30_s)),
      num(eta.p90_30_s) != null ? 'P90 ' + fmtMin(eta.p90_30_s) : '');
    setKPI('stops', stops == null ? DASH : nf0.format(stops),
      num(pr.stops_per_hour) != null ? nf1.format(pr.stops_per_hour) + ' stops per hour' : '');
    setKPI('km', num(pr.km) == null ? DASH : nf0.format(pr.km) + ' km',
      num(pr.co2_kg) != null ? nf0.format(pr.co2_kg) + ' kg CO₂' : '');
  }

  // ---------------------------------------------------------------------
  // Charts

  var charts = [];

  function showEmpty(el, text) {
    el.textContent = '';
    el.classList.add('chart-empty');
    var p = document.createElement('p');
    p.className = 'empty';
    p.textContent = text || EMPTY;
    el.appendChild(p);
  }

  // Bars of series k of m side by side around each x (a grouped bar chart).
  function groupedBars(k, m) {
    var w = 0.8 / m;
    return window.uPlot.paths.bars({
      disp: {
        x0: {unit: 1, values: function (u) { return u.data[0].map(function (x) { return x - 0.4 + k * w; }); }},
        size: {unit: 1, values: function () { return [w]; }}
      }
    });
  }

  // Bars of series k stacked on series 0..k-1 (cum[k] the running sums).
  function stackedBars(k, cum) {
    return window.uPlot.paths.bars({
      size: [0.7, 80],
      disp: {
        y0: {unit: 1, values: function () { return k === 0 ? cum[0].map(function () { return 0; }) : cum[k - 1]; }},
        y1: {unit: 1, values: function () { return cum[k]; }}
      }
    });
  }

  function alpha(hex, a) {
    var n = parseInt(hex.slice(1), 16);
    return 'rgba(' + (n >> 16 & 255) + ',' + (n >> 8 & 255) + ',' + (n & 255) + ',' + a + ')';
  }

  // chart draws series (each {label, value(row), color, dash, light})
  // of the rows against their labels into #chart-{id}. o: {line, stacked,
  // y: 'rate'|'minutes'|'count', ylabel}.
  function chart(id, rows, labels, xname, series, o) {
    var el = document.getElementById('chart-' + id);
    if (!el) return;
    el.textContent = '';
    el.classList.remove('chart-empty');
    var U = window.uPlot;
    if (!rows.length) { showEmpty(el, o.empty); return; }
    if (!U) { showEmpty(el, 'The chart library did not load.'); return; }
    var n = rows.length;
    var xs = rows.map(function (r, i) { return i; });
    var ys = series.map(function (s) { return rows.map(function (r) { var v = s.value(r); return v == null ? null : v; }); });
    if (ys.every(function (a) { return a.every(function (v) { return v == null; }); })) { showEmpty(el, o.empty); return; }
    var cum = null;
    if (o.stacked) {
      cum = [];
      ys.forEach(function (a, k) {
        cum.push(a.map(function (v, i) { return (v || 0) + (k ? cum[k - 1][i] : 0); }));
      });
    }
    var line = o.line && n > 1;
    var fmtY = o.y === 'rate' ? function (v) { return fmtRate(v); }
      : o.y === 'minutes' ? function (v) { return v == null ? DASH : nf1.format(v) + ' min'; }
        : function (v) { return v == null ? DASH : nf0.format(v); };
    var useries = [{
      label: xname,
      value: function (u, v) { var i = Math.round(v); return v == null || labels.full[i] == null ? DASH : labels.full[i]; }
    }];
    series.forEach(function (s, k) {
      var us = {
        label: s.label,
        stroke: s.color,
        width: line ? 2 : 0,
        value: function (u, v) { return fmtY(v); },
        spanGaps: false,
        points: {show: line && n <= 62, size: 5, fill: s.color}
      };
      if (line && s.dash) us.dash = s.dash;
      if (!line) {
        us.fill = s.light ? alpha(s.color, 0.45) : s.color;
        us.paths = o.stacked ? stackedBars(k, cum) : groupedBars(k, series.length);
        us.points = {show: false};
      }
      useries.push(us);
    });
    var maxLen = labels.axis.reduce(function (m, l) { return Math.max(m, l.length); }, 1);
    var width = Math.max(el.clientWidth, 240);
    var opts = {
      width: width,
      height: o.height || 240,
      series: useries,
      legend: {live: true},
      cursor: {drag: {x: false, y: false}, points: {show: line}},
      scales: {
        x: {time: false, range: function () { return [-0.5, n - 0.5]; }},
        y: {
          range: function (u, min, max) {
            if (o.stacked) max = Math.max.apply(null, cum[cum.length - 1]);
            if (o.y === 'rate') {
              var lo = min == null ? 0 : Math.max(0, Math.floor((min - 0.05) * 10) / 10);
              return [lo, 1];
            }
            max = max == null || max <= 0 ? 1 : max;
            return [0, max * 1.08];
          }
        }
      },
      axes: [
        {
          space: Math.min(Math.max(maxLen * 7 + 14, 36), 110),
          incrs: [1, 2, 3, 4, 5, 7, 10, 14, 20, 25, 50, 100, 200, 500],
          values: function (u, splits) {
            return splits.map(function (v) { return v === Math.round(v) && labels.axis[v] != null ? labels.axis[v] : ''; });
          },
          grid: {show: false},
          stroke: '#3b4650'
        },
        {
          values: function (u, splits) {
            return splits.map(function (v) {
              return o.y === 'rate' ? nf0.format(v * 100) + '%' : o.y === 'minutes' ? nf1.format(v) : nf0.format(v);
            });
          },
          label: o.ylabel || '',
          size: 54,
          stroke: '#3b4650',
          grid: {stroke: '#e3e7eb', width: 1}
        }
      ]
    };
    // Counts tick at whole numbers: halves would read 0, 1, 1, 2, 2.
    if (o.y === 'count') opts.axes[1].incrs = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 50000, 100000];
    var u = new U(opts, [xs].concat(ys), el);
    charts.push({u: u, el: el, height: opts.height});
  }

  function labelsOf(group, rows) {
    return {
      axis: rows.map(function (r) { return axisLabel(group, r.group); }),
      full: rows.map(function (r) { return r.group == null ? DASH : String(r.group); })
    };
  }

  function min(v) { var n = num(v); return n == null ? null : n / 60; }

  function drawCharts(d) {
    var ot = d.on_time, la = d.lateness, fa = d.first_attempt, eta = d.eta_accuracy, fl = d.failures;
    function one(id, res, series, o) {
      var rows = rowsOf(res);
      var group = res && res.group;
      chart(id, rows, labelsOf(group, rows), GROUPS[group] || 'Group', series, Object.assign({line: group === 'day'}, o));
    }
    one('on_time', ot, [{label: 'On-time rate', color: COLORS[0], value: function (r) { return num(r.on_time_rate); }}], {y: 'rate'});
    // Finished stops none of which was late: say so, not "no finished stops".
    var noLate = 'No late stops in this range';
    one('lateness', la, [
      {label: 'P50', color: COLORS[1], value: function (r) { return min(r.late_p50_s); }},
      {label: 'P90', color: COLORS[3], value: function (r) { return min(r.late_p90_s); }}
    ], {y: 'minutes', ylabel: 'minutes late', empty: rowsOf(la).length ? noLate : EMPTY});
    one('first_attempt', fa, [{label: 'First-attempt rate', color: COLORS[2], value: function (r) { return num(r.first_attempt_rate); }}], {y: 'rate'});
    // MAE solid, P90 dashed (lines) or lighter (bars); one colour per horizon.
    var etaSeries = [];
    ['mae', 'p90'].forEach(function (m) {
      ['60', '30', '10'].forEach(function (h, i) {
        etaSeries.push({label: m.toUpperCase() + ' ' + h + ' min out', color: COLORS[i], dash: m === 'p90' ? [6, 4] : null,
          light: m === 'p90', value: function (r) { return min(r[m + '_' + h + '_s']); }});
      });
    });
    one('eta_accuracy', eta, etaSeries, {y: 'minutes', ylabel: 'minutes'});
    var reasons = ['not_home', 'refused', 'address_not_found', 'access', 'damaged', 'other'];
    one('failures', fl, reasons.map(function (k, i) {
      return {label: LABELS[k], color: COLORS[i], value: function (r) { return num(r[k]); }};
    }), {y: 'count', ylabel: 'attempts', stacked: true, line: false});

    // The lateness histogram: top-level buckets of the lateness figure.
    var hist = la && Array.isArray(la.histogram) ? la.histogram.filter(function (b) { return b && typeof b === 'object'; }) : [];
    if (!hist.some(function (b) { return num(b.stops); })) hist = [];
    var hl = hist.map(function (b) {
      var a = num(b.from_s) || 0, z = num(b.to_s);
      return z == null ? '≥ ' + nf0.format(a / 60) : nf0.format(a / 60) + '–' + nf0.format(z / 60);
    });
    chart('histogram', hist, {axis: hl, full: hl.map(function (l) { return l + ' min late'; })}, 'Minutes late',
      [{label: 'Stops', color: COLORS[3], value: function (b) { return num(b.stops); }}],
      {y: 'count', ylabel: 'stops', line: false, empty: rowsOf(la).length ? noLate : EMPTY});
  }

  function resizeCharts() {
    charts.forEach(function (c) {
      var w = Math.max(c.el.clientWidth, 240);
      if (Math.abs(w - c.u.width) > 1) c.u.setSize({width: w, height: c.height});
    });
  }

  // ---------------------------------------------------------------------
  // Tables

  function table(el, res) {
    if (!el) return;
    el.textContent = '';
    var group = res && res.group;
    var rows = rowsOf(res);
    var cols = res && Array.isArray(res.columns) ? res.columns.filter(function (c) { return typeof c === 'string'; }) : [];
    if (!cols.length && rows.length) cols = Object.keys(rows[0]).filter(function (k) { return k !== 'boundary'; });
    if (cols.indexOf('group') !== 0) cols = ['group'].concat(cols.filter(function (c) { return c !== 'group'; }));
    var thead = el.createTHead();
    var hr = thead.insertRow();
    cols.forEach(function (c, i) {
      var th = document.createElement('th');
      th.scope = 'col';
      if (kind(c) !== 'group') th.className = 'num';
      var b = document.createElement('button');
      b.type = 'button';
      b.className = 'sort';
      b.textContent = colLabel(c, group);
      if (DESCR[c]) b.title = DESCR[c];
      b.addEventListener('click', function () { sortBy(el, i); });
      th.appendChild(b);
      hr.appendChild(th);
    });
    // Durations read m:ss: say so once, under the table.
    var note = el.parentNode && el.parentNode.nextElementSibling;
    if (note && note.classList.contains('table-note')) note.hidden = !cols.some(function (c) { return kind(c) === 'duration'; });
    var tbody = el.createTBody();
    if (!rows.length) {
      var tr = tbody.insertRow();
      var td = tr.insertCell();
      td.colSpan = cols.length;
      td.className = 'empty';
      td.textContent = EMPTY;
    }
    rows.forEach(function (r, ri) {
      var tr = tbody.insertRow();
      tr._order = ri;
      tr._values = [];
      cols.forEach(function (c, ci) {
        var v = r[c];
        var cell;
        if (ci === 0) {
          cell = document.createElement('th');
          cell.scope = 'row';
          tr.appendChild(cell);
        } else {
          cell = tr.insertCell();
          cell.className = 'num';
        }
        cell.textContent = fmtCell(c, v);
        tr._values.push(ci === 0 ? (timeGroup(group) ? ri : (v == null ? '' : String(v))) : num(v));
      });
    });
    if (res && res.total && typeof res.total === 'object' && rows.length) {
      var tf = el.createTFoot().insertRow();
      cols.forEach(function (c, ci) {
        var cell;
        if (ci === 0) {
          cell = document.createElement('th');
          cell.scope = 'row';
          cell.textContent = 'Total';
          tf.appendChild(cell);
        } else {
          cell = tf.insertCell();
          cell.className = 'num';
          cell.textContent = fmtCell(c, res.total[c]);
        }
      });
    }
  }

  var collator = new Intl.Collator(locale, {numeric: true, sensitivity: 'base'});

  // Sort el's body by column i: ascending first, descending on the next
  // click; empty values last either way.
  function sortBy(el, i) {
    var ths = el.tHead.rows[0].cells;
    var th = ths[i];
    var dir = th.getAttribute('aria-sort') === 'ascending' ? 'descending' : 'ascending';
    Array.prototype.forEach.call(ths, function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', dir);
    var body = el.tBodies[0];
    var rows = Array.prototype.filter.call(body.rows, function (r) { return r._values; });
    var s = dir === 'ascending' ? 1 : -1;
    rows.sort(function (a, b) {
      var x = a._values[i], y = b._values[i];
      var xe = x == null || x === '', ye = y == null || y === '';
      if (xe || ye) return xe && ye ? a._order - b._order : xe ? 1 : -1;
      var c = typeof x === 'number' && typeof y === 'number' ? x - y : collator.compare(String(x), String(y));
      return c ? s * c : a._order - b._order;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }

  function drawTables(d) {
    Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function (el) {
      var f = el.getAttribute('data-figure');
      table(el, d[f]);
    });
  }

  // ---------------------------------------------------------------------
  // Heat map

  // Late-rate buckets: upper bounds (the last is open), colours in CSS
  // (.heat-0 … .heat-4, a sequential ramp), .heat-none when no data.
  var HEAT = [0.02, 0.05, 0.1, 0.2];

  function heatClass(rate) {
    if (rate == null) return 'heat-none';
    for (var i = 0; i < HEAT.length; i++) if (rate < HEAT[i]) return 'heat-' + i;
    return 'heat-' + HEAT.length;
  }

  function drawLegend() {
    var el = document.getElementById('heat-legend');
    if (!el) return;
    el.textContent = '';
    var title = document.createElement('p');
    title.className = 'legend-title';
    title.textContent = 'Late stops';
    el.appendChild(title);
    var ul = document.createElement('ul');
    var pct = function (v) { return nf0.format(v * 100); };
    var items = [];
    for (var i = 0; i <= HEAT.length; i++) {
      var lbl = i === 0 ? 'under ' + pct(HEAT[0]) + ' %'
        : i === HEAT.length ? pct(HEAT[i - 1]) + ' % or more'
          : pct(HEAT[i - 1]) + '–' + pct(HEAT[i]) + ' %';
      items.push(['heat-' + i, lbl]);
    }
    items.push(['heat-none', 'no finished stops']);
    items.forEach(function (it) {
      var li = document.createElement('li');
      var sw = document.createElement('span');
      sw.className = 'swatch ' + it[0];
      sw.setAttribute('aria-hidden', 'true');
      li.appendChild(sw);
      li.appendChild(document.createTextNode(it[1]));
      ul.appendChild(li);
    });
    el.appendChild(ul);
  }

  // The view in which the bounds fit el (Web Mercator, whole zooms), so
  // the map starts there instead of loading tiles of another view first.
  function fittedView(w, s, e, n, el, pad, maxZoom) {
    function my(lat) { var t = Math.sin(lat * Math.PI / 180); return 0.5 - Math.log((1 + t) / (1 - t)) / (4 * Math.PI); }
    var x0 = (w + 180) / 360, x1 = (e + 180) / 360, y0 = my(n), y1 = my(s);
    var cw = Math.max(el.clientWidth - 2 * pad, 1), ch = Math.max(el.clientHeight - 2 * pad, 1);
    var dx = Math.max(x1 - x0, 1e-12), dy = Math.max(y1 - y0, 1e-12);
    var z = Math.floor(Math.log(Math.min(cw / (256 * dx), ch / (256 * dy))) / Math.LN2);
    z = Math.max(8, Math.min(maxZoom, z));
    var lat = Math.atan(Math.sinh(Math.PI * (1 - (y0 + y1)))) * 180 / Math.PI;
    return {center: [(w + e) / 2, lat], zoom: z};
  }

  function tip(r) {
    var box = document.createElement('div');
    box.className = 'heat-tip';
    var lines = [
      ['Cell', r.group == null ? DASH : String(r.group)],
      ['Stops', fmtCell('stops', num(r.stops))],
      ['Late', fmtRate(num(r.late_rate)) + (num(r.late) != null ? ' (' + nf0.format(r.late) + ')' : '')],
      ['On time', fmtRate(num(r.on_time_rate))]
    ];
    lines.forEach(function (l) {
      var p = document.createElement('p');
      var b = document.createElement('b');
      b.textContent = l[0] + ': ';
      p.appendChild(b);
      p.appendChild(document.createTextNode(l[1]));
      box.appendChild(p);
    });
    return box;
  }

  function drawHeat(res) {
    var el = document.getElementById('heat-map');
    if (!el) return;
    table(document.getElementById('table-heat'), res);
    var rows = rowsOf(res).filter(function (r) {
      return Array.isArray(r.boundary) && r.boundary.length >= 3 && r.boundary.every(function (c) {
        return Array.isArray(c) && isFinite(c[0]) && isFinite(c[1]);
      });
    });
    if (!rows.length || !window.LastmileMap || !window.L) {
      showEmpty(el, rows.length ? 'The map did not load.' : EMPTY);
      return;
    }
    drawLegend();
    var w = 180, s = 90, e = -180, n = -90;
    rows.forEach(function (r) {
      r.boundary.forEach(function (c) {
        w = Math.min(w, c[0]); e = Math.max(e, c[0]); s = Math.min(s, c[1]); n = Math.max(n, c[1]);
      });
    });
    var v = fittedView(w, s, e, n, el, 16, 15);
    var map = window.LastmileMap.create(el, {center: v.center, zoom: v.zoom, interactive: true, label: el.getAttribute('aria-label')});
    var L = window.L;
    var lm = map.leaflet;
    var h3Field = form && form.elements.h3;
    rows.forEach(function (r) {
      var lls = r.boundary.map(function (c) { return [c[1], c[0]]; });
      var poly = L.polygon(lls, {className: 'heat-cell ' + heatClass(num(r.late_rate)), weight: 1, fill: true, fillOpacity: 0.75});
      poly.bindTooltip(tip(r), {sticky: true, direction: 'top', className: 'heat-tooltip'});
      poly.on('click', function () {
        if (!h3Field || r.group == null) return;
        h3Field.value = String(r.group);
        submitView();
      });
      poly.addTo(lm);
    });
  }

  // ---------------------------------------------------------------------
  // The view's URL

  function submitView() {
    var p = viewParams();
    window.location.assign('/dashboard' + (String(p) ? '?' + p : ''));
  }

  function syncURL() {
    var p = viewParams();
    var want = '/dashboard' + (String(p) ? '?' + p : '');
    if (window.location.pathname + window.location.search !== want && window.history && window.history.replaceState) {
      window.history.replaceState(null, '', want);
    }
  }

  if (form) {
    // Empty fields stay out of the URL.
    form.addEventListener('submit', function (ev) {
      if (!form.checkValidity()) return;
      ev.preventDefault();
      submitView();
    });
  }

  // ---------------------------------------------------------------------

  function safely(name, f) {
    try { f(); } catch (e) { if (window.console) console.error('dashboard: ' + name, e); }
  }

  var data = readInitial();
  syncURL();
  safely('tiles', function () { drawKPIs(data); });
  safely('charts', function () { drawCharts(data); });
  safely('tables', function () { drawTables(data); });

  var heat = data.heat;
  var heatDone;
  if (heat && typeof heat === 'object') {
    safely('heat map', function () { drawHeat(heat); });
    heatDone = Promise.resolve();
  } else {
    var p = viewParams();
    p.set('group', 'h3');
    heatDone = fetch('/v1/analytics/on_time?' + p, {credentials: 'same-origin', headers: {Accept: 'application/json'}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .catch(function () { return null; })
      .then(function (res) { safely('heat map', function () { drawHeat(res || {}); }); });
  }

  var resizeTimer = 0;
  window.addEventListener('resize', function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(resizeCharts, 120);
  });

  heatDone.then(function () {
    // The moment everything is drawn, for the tests' first-render time.
    if (window.performance && performance.mark) performance.mark('lm-ready');
    document.body.dataset.ready = '1';
  });
})();
