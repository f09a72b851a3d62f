// The engine's dashboard: sign in with an API key, then the fleet, a vehicle (with its OCPP
// charger when it has one), the silent devices.
// Plain JavaScript served by the engine (no library, no CDN, no build step); charts are SVG drawn
// here. The key lives in sessionStorage (this tab only) and travels as a bearer header, never
// in a URL.
"use strict";

(function () {
  const KEY_STORAGE = "energy-ingest.apiKey";
  const REFRESH_MS = 30000;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const THRESHOLD = Number(document.body.dataset.efficiencyThreshold) || 0.85;

  const $ = (id) => document.getElementById(id);
  const state = {
    fleet: { sort: "efficiency", order: "asc", rows: [], cursor: null },
    devices: { rows: [], cursor: null },
    timer: null,
    view: null,
    loads: { fleet: 0, vehicle: 0, devices: 0 },
  };

  // Each view draws only its newest answer: a slow older one arriving later is dropped.
  function ticket(view) {
    const mine = ++state.loads[view];
    return () => mine === state.loads[view];
  }

  // --- the API --------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || "HTTP " + status);
      this.status = status;
      this.body = body;
    }
    // No route at all (this engine is older than the endpoint), not a missing vehicle.
    get missingEndpoint() {
      return this.status === 404 && this.body && this.body.message === "no such endpoint";
    }
  }

  async function request(path, key) {
    let response;
    try {
      response = await fetch(path, {
        headers: { Authorization: "Bearer " + key, Accept: "application/json" },
        cache: "no-store",
        credentials: "omit",
      });
    } catch (_) {
      throw new ApiError(0, { message: "the engine cannot be reached" });
    }
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  async function api(path) {
    const key = sessionStorage.getItem(KEY_STORAGE);
    if (!key) {
      showSignIn("");
      throw new ApiError(401, { message: "not signed in" });
    }
    try {
      return await request(path, key);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        sessionStorage.removeItem(KEY_STORAGE);
        showSignIn("The engine no longer accepts this API key. Sign in again.");
      }
      throw error;
    }
  }

  function query(params) {
    const parts = [];
    for (const [name, value] of Object.entries(params)) {
      if (value !== null && value !== undefined && value !== "") {
        parts.push(encodeURIComponent(name) + "=" + encodeURIComponent(value));
      }
    }
    return parts.length ? "?" + parts.join("&") : "";
  }

  function explain(error, what, path) {
    if (error.missingEndpoint) {
      return what + " is not available in this engine (GET " + path + " is not served).";
    }
    if (error.status === 0) return "The engine cannot be reached; retrying at the next refresh.";
    return what + ": the engine answered " + error.status + " — " + error.message;
  }

  // --- formatting -------------------------------------------------------------------------------

  const fmt = {
    kwh: (v) => (v === null || v === undefined ? "—" : Number(v).toFixed(2)),
    pct: (v) => (v === null || v === undefined ? "—" : (Number(v) * 100).toFixed(1) + " %"),
    num: (v, d) => (v === null || v === undefined ? "—" : Number(v).toFixed(d)),
    int: (v) => (v === null || v === undefined ? "—" : Number(v).toLocaleString()),
    time: (v) => (v ? new Date(v).toLocaleString() : "never"),
    ago: (v) => {
      if (!v) return "never reported";
      const seconds = Math.max(0, (Date.now() - new Date(v).getTime()) / 1000);
      if (seconds < 90) return Math.round(seconds) + " s";
      if (seconds < 5400) return Math.round(seconds / 60) + " min";
      if (seconds < 172800) return (seconds / 3600).toFixed(1) + " h";
      return (seconds / 86400).toFixed(1) + " d";
    },
  };

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value);
    }
    for (const child of children || []) node.append(child);
    return node;
  }

  function tiles(container, items) {
    container.replaceChildren(
      ...items.map(([label, value, extra]) =>
        el("div", { class: "tile " + (extra || "") }, [
          el("span", { class: "label", text: label }),
          el("span", { class: "value", text: value }),
        ])
      )
    );
  }

  function message(id, text) {
    const node = $(id);
    node.textContent = text || "";
    node.hidden = !text;
  }

  function stamp(id) {
    $(id).textContent = "updated " + new Date().toLocaleTimeString();
  }

  // --- windows ----------------------------------------------------------------------------------

  const HOUR = 3600 * 1000;

  function windowOf(choice, fromInput, toInput) {
    const now = new Date();
    if (choice === "6h") return { from: new Date(now - 6 * HOUR), to: now };
    if (choice === "7d") return { from: new Date(now - 7 * 24 * HOUR), to: now };
    if (choice === "custom" && fromInput && toInput && fromInput.value && toInput.value) {
      return { from: new Date(fromInput.value), to: new Date(toInput.value) };
    }
    return { from: new Date(now - 24 * HOUR), to: now };
  }

  // The fleet's windows end with the current UTC hour and span whole hours, as the engine's
  // default window does: the engine answers them from its rollups alone (a window to the
  // minute also reads every device's partial hours from history).
  function fleetWindowOf(choice, fromInput, toInput) {
    if (choice === "custom") return windowOf(choice, fromInput, toInput);
    const to = new Date(Math.floor(Date.now() / HOUR) * HOUR + HOUR);
    const hours = choice === "6h" ? 6 : choice === "7d" ? 7 * 24 : 24;
    return { from: new Date(to - hours * HOUR), to };
  }

  function stepFor(win) {
    // At most ~400 buckets to draw (the engine allows 2,000 an answer).
    const minutes = (win.to - win.from) / 60000;
    for (const [step, size] of [["5m", 5], ["15m", 15], ["1h", 60]]) {
      if (minutes / size <= 400) return [step, size];
    }
    return ["1d", 1440];
  }

  // --- SVG charts -------------------------------------------------------------------------------

  function svg(tag, attrs, children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, String(value));
    }
    for (const child of children || []) node.append(child);
    return node;
  }

  const W = 640;
  const PAD = { left: 56, right: 12, top: 10, bottom: 26 };

  function frame(label, height) {
    return svg("svg", {
      class: "plot",
      viewBox: "0 0 " + W + " " + height,
      role: "img",
      "aria-label": label,
      preserveAspectRatio: "xMidYMid meet",
    });
  }

  function niceMax(value) {
    if (!(value > 0)) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(value)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * power >= value) return m * power;
    return 10 * power;
  }

  function yAxis(root, height, min, max, unit, format) {
    const plotH = height - PAD.top - PAD.bottom;
    for (let i = 0; i <= 4; i++) {
      const value = min + ((max - min) * i) / 4;
      const y = PAD.top + plotH - (plotH * i) / 4;
      root.append(svg("line", { class: "grid", x1: PAD.left, x2: W - PAD.right, y1: y, y2: y }));
      root.append(
        svg("text", { x: PAD.left - 4, y: y + 4, "text-anchor": "end", text: format(value) + unit })
      );
    }
    root.append(
      svg("line", { class: "axis", x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: height - PAD.bottom })
    );
  }

  function timeAxis(root, height, from, to) {
    const y = height - PAD.bottom;
    root.append(svg("line", { class: "axis", x1: PAD.left, x2: W - PAD.right, y1: y, y2: y }));
    const span = to - from;
    const withDate = span > 36 * HOUR;
    for (let i = 0; i <= 4; i++) {
      const t = new Date(from.getTime() + (span * i) / 4);
      const text = withDate
        ? t.toLocaleDateString(undefined, { month: "short", day: "numeric" }) +
          " " + t.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" })
        : t.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
      const x = PAD.left + ((W - PAD.left - PAD.right) * i) / 4;
      const anchor = i === 0 ? "start" : i === 4 ? "end" : "middle";
      root.append(svg("text", { x, y: y + 16, "text-anchor": anchor, text }));
    }
  }

  function xScale(from, to) {
    const width = W - PAD.left - PAD.right;
    const span = to - from || 1;
    return (t) => PAD.left + (width * (t - from)) / span;
  }

  function emptyNote(root, height, text) {
    root.append(svg("text", { class: "empty", x: W / 2, y: height / 2, "text-anchor": "middle", text }));
  }

  function legend(items) {
    return el(
      "div",
      { class: "legend" },
      items.map(([cls, label]) => el("span", {}, [el("span", { class: "key " + cls }), label]))
    );
  }

  // Lines over time; a null value or a missing bucket (a gap longer than one step) breaks the
  // line, so gaps in the data show as gaps.
  function lineChart(container, opts) {
    const height = 200;
    const root = frame(opts.label, height);
    const x = xScale(opts.from, opts.to);
    let max = opts.max;
    let min = opts.min || 0;
    if (max === undefined) {
      let top = 0;
      for (const line of opts.lines) for (const b of opts.buckets) {
        const v = line.value(b);
        if (v !== null && v !== undefined) top = Math.max(top, v);
      }
      max = niceMax(top);
    }
    const plotH = height - PAD.top - PAD.bottom;
    const y = (v) => PAD.top + plotH - (plotH * (Math.min(Math.max(v, min), max) - min)) / (max - min);
    yAxis(root, height, min, max, opts.unit || "", opts.format || ((v) => v.toFixed(0)));
    timeAxis(root, height, opts.from, opts.to);
    let points = 0;
    opts.lines.forEach((line, index) => {
      let d = "";
      let previous = null;
      for (const b of opts.buckets) {
        const v = line.value(b);
        const t = new Date(b.start).getTime();
        if (v === null || v === undefined || Number.isNaN(v)) {
          previous = null;
          continue;
        }
        const connected = previous !== null && t - previous <= opts.stepMs * 1.5;
        d += (connected ? "L" : "M") + x(t).toFixed(1) + " " + y(v).toFixed(1);
        if (!connected) {
          // A lone point between gaps is still visible.
          d += "l0.01 0";
        }
        previous = t;
        points++;
      }
      if (d) root.append(svg("path", { class: "line s" + index, d, "stroke-linecap": "round" }));
    });
    if (opts.threshold !== undefined) {
      const ty = y(opts.threshold);
      root.append(svg("line", { class: "threshold", x1: PAD.left, x2: W - PAD.right, y1: ty, y2: ty }));
      root.append(svg("text", { x: W - PAD.right, y: ty - 4, "text-anchor": "end", text: "threshold " + fmt.pct(opts.threshold) }));
    }
    if (!points) emptyNote(root, height, "no data in this window");
    root.dataset.points = String(points);
    const keys = opts.lines.map((line, index) => ["k" + index, line.label]);
    if (opts.threshold !== undefined) keys.push(["kt", "threshold"]);
    container.replaceChildren(root, legend(keys));
  }

  // AC and DC side by side per bucket.
  function pairedBars(container, opts) {
    const height = 200;
    const root = frame(opts.label, height);
    const x = xScale(opts.from, opts.to);
    let top = 0;
    for (const b of opts.buckets) top = Math.max(top, b.energyConsumedAc || 0, b.energyDeliveredDc || 0);
    const max = niceMax(top);
    const plotH = height - PAD.top - PAD.bottom;
    const y = (v) => PAD.top + plotH - (plotH * v) / max;
    yAxis(root, height, 0, max, "", (v) => String(Number(v.toFixed(2))));
    timeAxis(root, height, opts.from, opts.to);
    const slot = Math.max(1, x(opts.from.getTime() + opts.stepMs) - x(opts.from.getTime()));
    const bar = Math.max(0.5, slot * 0.4);
    let points = 0;
    for (const b of opts.buckets) {
      const left = x(new Date(b.start).getTime());
      [b.energyConsumedAc, b.energyDeliveredDc].forEach((v, index) => {
        if (v === null || v === undefined) return;
        points++;
        if (v <= 0) return;
        root.append(svg("rect", { class: "s" + index, x: left + index * bar, y: y(v), width: bar, height: y(0) - y(v) }));
      });
    }
    if (!points) emptyNote(root, height, "no data in this window");
    root.dataset.points = String(points);
    container.replaceChildren(root, legend([["k0", "AC consumed"], ["k1", "DC delivered"]]));
  }

  // The whole fleet's efficiency, by the engine's bins (the answer's summary counts every
  // vehicle of the window, not only the rows of the page).
  function histogram(container, bins) {
    const height = 180;
    const root = frame("Histogram of vehicle efficiency, whole fleet", height);
    const edges = bins.filter((b) => b.to !== null && b.to !== undefined).map((b) => b.to);
    const counts = bins.map((b) => b.vehicles);
    const total = counts.reduce((a, b) => a + b, 0);
    const labels = [
      "<" + Math.round(edges[0] * 100) + "%",
      ...edges.slice(1).map((e) => Math.round(e * 100) + "%"),
      "≥" + Math.round(edges[edges.length - 1] * 100) + "%",
    ];
    const max = Math.ceil(niceMax(Math.max(4, ...counts)) / 4) * 4;
    const plotH = height - PAD.top - PAD.bottom;
    yAxis(root, height, 0, max, "", (v) => v.toFixed(0));
    const width = (W - PAD.left - PAD.right) / counts.length;
    counts.forEach((count, i) => {
      const h = (plotH * count) / max;
      const upper = i < edges.length ? edges[i] : Infinity;
      const below = upper <= THRESHOLD + 1e-9;
      const rect = svg("rect", {
        class: "bar" + (below ? " below" : ""),
        x: PAD.left + i * width + 1,
        y: PAD.top + plotH - h,
        width: Math.max(1, width - 2),
        height: h,
      });
      const bin = bins[i];
      const range =
        bin.from === null ? "below " + fmt.pct(bin.to)
        : bin.to === null ? fmt.pct(bin.from) + " or more"
        : fmt.pct(bin.from) + " to " + fmt.pct(bin.to);
      rect.append(svg("title", { text: range + ": " + count + " vehicles" }));
      root.append(rect);
      if (i % 2 === 0 || counts.length < 10) {
        root.append(svg("text", { x: PAD.left + i * width + width / 2, y: height - PAD.bottom + 14, "text-anchor": "middle", text: labels[i] }));
      }
    });
    root.append(svg("line", { class: "axis", x1: PAD.left, x2: W - PAD.right, y1: height - PAD.bottom, y2: height - PAD.bottom }));
    // The threshold sits on the edge of its bin.
    const position = edges.findIndex((edge) => edge >= THRESHOLD - 1e-9);
    if (position >= 0) {
      const tx = PAD.left + (position + 1) * width;
      root.append(svg("line", { class: "threshold", x1: tx, x2: tx, y1: PAD.top, y2: height - PAD.bottom }));
      root.append(svg("text", { x: tx + 4, y: PAD.top + 10, text: "threshold " + fmt.pct(THRESHOLD) }));
    }
    if (!total) emptyNote(root, height, "no vehicle with an efficiency in this window");
    root.dataset.points = String(total);
    container.replaceChildren(root, legend([["k0", "vehicles per efficiency bin (red: at or below the threshold)"]]));
  }

  function timeline(container, assignments, from, to) {
    const rows = assignments.filter((a) => new Date(a.from) < to && (!a.to || new Date(a.to) > from));
    const height = PAD.top + PAD.bottom + Math.max(1, rows.length) * 28;
    const root = frame("Meter assignments of the vehicle in the window", height);
    const x = xScale(from, to);
    timeAxis(root, height, from, to);
    rows.forEach((a, i) => {
      const start = Math.max(new Date(a.from).getTime(), from.getTime());
      const end = a.to ? Math.min(new Date(a.to).getTime(), to.getTime()) : to.getTime();
      const y = PAD.top + i * 28 + 4;
      const rect = svg("rect", { class: "assignment", x: x(start), y, width: Math.max(2, x(end) - x(start)), height: 20, rx: 3 });
      rect.append(svg("title", { text: a.meterId + ": " + fmt.time(a.from) + " → " + (a.to ? fmt.time(a.to) : "now") }));
      root.append(rect);
      root.append(svg("text", { class: "assignment-label", x: x(start) + 6, y: y + 14, text: a.meterId + (a.to ? "" : " (current)") }));
    });
    if (!rows.length) emptyNote(root, height, "no meter assigned in this window");
    root.dataset.points = String(rows.length);
    container.replaceChildren(root);
  }

  // --- views --------------------------------------------------------------------------------------

  function show(view) {
    for (const section of document.querySelectorAll("main > .view")) section.hidden = section.id !== view;
    $("nav").hidden = view === "signin";
    for (const link of document.querySelectorAll("#nav a")) {
      if (link.dataset.view === view) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    state.view = view;
  }

  function showSignIn(error) {
    stopRefresh();
    show("signin");
    $("signin-error").textContent = error || "";
    $("api-key").value = "";
    $("api-key").focus();
  }

  function stopRefresh() {
    if (state.timer !== null) clearInterval(state.timer);
    state.timer = null;
  }

  function refreshEvery(load) {
    stopRefresh();
    state.timer = setInterval(() => {
      if (!document.hidden) load(false);
    }, REFRESH_MS);
  }

  // Fleet

  function fleetPath(cursor) {
    const win = fleetWindowOf($("fleet-window").value, $("fleet-from"), $("fleet-to"));
    return (
      "/v1/analytics/fleet/performance" +
      query({
        from: win.from.toISOString(),
        to: win.to.toISOString(),
        status: $("fleet-status").value,
        sort: state.fleet.sort,
        order: state.fleet.order,
        limit: 500,
        histogram: cursor ? undefined : "true",
        cursor,
      })
    );
  }

  function fleetRow(v) {
    const link = el("a", { href: "#/vehicle/" + encodeURIComponent(v.vehicleId), text: v.vehicleId });
    const row = el("tr", { "data-vehicle-id": v.vehicleId }, [
      el("th", { scope: "row" }, [link]),
      el("td", { class: "status" }, [el("span", { class: "badge status-" + v.status, text: v.status })]),
      el("td", { class: "num", text: fmt.pct(v.efficiency) }),
      el("td", { class: "num", text: fmt.kwh(v.energyConsumedAc) }),
      el("td", { class: "num", text: fmt.kwh(v.energyDeliveredDc) }),
      el("td", { class: "num", text: fmt.kwh(v.energyLossKwh) }),
      el("td", { class: "num", text: fmt.num(v.averageBatteryTemp, 1) }),
      el("td", { class: "num", text: completeness(v.completeness) }),
      el("td", { text: (v.meterIds || []).join(", ") || "—" }),
      el("td", { text: v.lastSeen ? fmt.ago(v.lastSeen) + " ago" : "never", title: fmt.time(v.lastSeen) }),
    ]);
    row.addEventListener("click", (event) => {
      if (event.target.tagName !== "A") location.hash = link.getAttribute("href");
    });
    return row;
  }

  function completeness(value) {
    if (value === null || value === undefined) return "—";
    const pct = (v) => Math.round(Number(v) * 100) + "%";
    if (typeof value === "number") return pct(value);
    const parts = [];
    if (value.vehicle !== undefined && value.vehicle !== null) parts.push("V " + pct(value.vehicle));
    if (value.meter !== undefined && value.meter !== null) parts.push("M " + pct(value.meter));
    return parts.join(" · ") || "—";
  }

  function drawFleetRows() {
    const rows = state.fleet.rows;
    $("fleet-table").querySelector("tbody").replaceChildren(...rows.map(fleetRow));
    histogram($("fleet-histogram"), state.fleet.histogram || []);
    $("fleet-more").hidden = !state.fleet.cursor;
    for (const th of document.querySelectorAll("#fleet-table th[data-sort]")) {
      if (th.dataset.sort === state.fleet.sort) th.setAttribute("aria-sort", state.fleet.order === "asc" ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    }
  }

  async function loadFleet(more) {
    const path = fleetPath(more ? state.fleet.cursor : null);
    const current = ticket("fleet");
    let answer;
    try {
      answer = await api(path);
    } catch (error) {
      if (error.status === 401 || !current()) return;
      message("fleet-message", explain(error, "Fleet analytics", "/v1/analytics/fleet/performance"));
      if (!more) {
        state.fleet.rows = [];
        state.fleet.histogram = [];
        state.fleet.cursor = null;
        $("fleet-tiles").replaceChildren();
        drawFleetRows();
      }
      return;
    }
    if (!current()) return;
    message("fleet-message", "");
    const s = answer.summary || {};
    tiles($("fleet-tiles"), [
      ["Vehicles", fmt.int(s.vehicles)],
      ["ok", fmt.int(s.ok), "status-ok"],
      ["underperforming", fmt.int(s.underperforming), "status-underperforming"],
      ["implausible", fmt.int(s.implausible), "status-implausible"],
      ["insufficient data", fmt.int(s.insufficientData)],
      ["silent 15 min", fmt.int(s.silent)],
      ["AC consumed kWh", fmt.kwh(s.energyConsumedAc)],
      ["DC delivered kWh", fmt.kwh(s.energyDeliveredDc)],
      ["Efficiency", fmt.pct(s.efficiency)],
      ["Loss kWh", fmt.kwh(s.energyLossKwh)],
    ]);
    if (s.efficiencyHistogram) state.fleet.histogram = s.efficiencyHistogram;
    state.fleet.rows = more ? state.fleet.rows.concat(answer.vehicles || []) : answer.vehicles || [];
    state.fleet.cursor = answer.nextCursor || null;
    drawFleetRows();
    const period = answer.period || {};
    $("fleet-updated").textContent =
      (period.start ? fmt.time(period.start) + " → " + fmt.time(period.end) + " · " : "") +
      "updated " + new Date().toLocaleTimeString();
  }

  function openFleet() {
    show("fleet");
    loadFleet(false);
    refreshEvery(loadFleet);
  }

  // Vehicle

  async function optional(path, what, problems) {
    try {
      return await api(path);
    } catch (error) {
      if (error.status !== 401) problems.push(explain(error, what, path.split("?")[0]));
      return null;
    }
  }

  async function loadVehicle(id) {
    const win = windowOf($("vehicle-window").value);
    const [step, minutes] = stepFor(win);
    const stepMs = minutes * 60000;
    const tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    const enc = encodeURIComponent(id);
    const span = { from: win.from.toISOString(), to: win.to.toISOString() };
    const problems = [];
    const current = ticket("vehicle");
    const [performance, live, assignments, series] = await Promise.all([
      optional("/v1/analytics/performance/" + enc + query(span), "Performance", problems),
      optional("/v1/analytics/vehicle/" + enc + "/live", "Live state", problems),
      optional("/v1/vehicles/" + enc + "/assignments", "Assignments", problems),
      optional("/v1/analytics/vehicle/" + enc + "/series" + query({ ...span, step, tz }), "Time series", problems),
    ]);
    // The meter feeding it now, when it is an OCPP connector (`{chargePointId}:{connectorId}`):
    // the charger's status and its newest meter value.
    const meterIds = (performance && performance.meterIds) || [];
    const connector = connectorOf(meterIds[meterIds.length - 1]);
    const charger = connector
      ? await optional("/v1/analytics/charger/" + encodeURIComponent(connector.chargePointId) + "/live", "Charger", problems)
      : null;
    if (state.view !== "vehicle" || !current()) return;
    message("vehicle-message", problems.join(" "));
    drawCharger(connector, charger);
    if (performance) {
      tiles($("vehicle-tiles"), [
        ["Status", performance.status, "word status-" + performance.status],
        ["Efficiency", fmt.pct(performance.efficiency)],
        ["AC consumed kWh", fmt.kwh(performance.energyConsumedAc)],
        ["DC delivered kWh", fmt.kwh(performance.energyDeliveredDc)],
        ["Loss kWh", fmt.kwh(performance.energyLossKwh)],
        ["Avg battery °C", fmt.num(performance.averageBatteryTemp, 1)],
        ["Meters", (performance.meterIds || []).join(", ") || "—"],
        ["Readings V / M", fmt.int(performance.dataPoints && performance.dataPoints.vehicle) + " / " + fmt.int(performance.dataPoints && performance.dataPoints.meter)],
      ]);
    } else {
      $("vehicle-tiles").replaceChildren();
    }
    if (live) {
      tiles($("vehicle-live"), [
        ["SoC", fmt.num(live.soc, 0) + " %"],
        ["Battery °C", fmt.num(live.batteryTemp, 1)],
        ["DC counter kWh", fmt.kwh(live.kwhDeliveredDc)],
        ["Last reading", fmt.ago(live.lastUpdatedAt) + " ago"],
      ]);
    } else {
      tiles($("vehicle-live"), [["Live state", "no reading yet"]]);
    }
    timeline($("chart-assignments"), assignments || [], win.from, win.to);
    const buckets = (series && series.buckets) || [];
    const common = { buckets, from: win.from, to: win.to, stepMs };
    pairedBars($("chart-energy"), { ...common, label: "AC consumed and DC delivered per " + step + " bucket" });
    lineChart($("chart-efficiency"), {
      ...common,
      label: "Efficiency per " + step + " bucket with the threshold",
      lines: [{ label: "efficiency", value: (b) => (b.efficiency === null || b.efficiency === undefined ? null : b.efficiency) }],
      min: 0,
      max: 1.2,
      threshold: THRESHOLD,
      format: (v) => Math.round(v * 100) + "%",
    });
    lineChart($("chart-soc"), {
      ...common,
      label: "State of charge, last value per " + step + " bucket",
      lines: [{ label: "SoC", value: (b) => b.soc }],
      min: 0,
      max: 100,
      unit: "%",
    });
    lineChart($("chart-temp"), {
      ...common,
      label: "Battery temperature per " + step + " bucket",
      lines: [
        { label: "average", value: (b) => b.averageBatteryTemp },
        { label: "maximum", value: (b) => b.maxBatteryTemp },
      ],
      unit: "°",
    });
    stamp("vehicle-updated");
    $("vehicle").dataset.loaded = id + " " + $("vehicle-window").value;
  }

  function connectorOf(meterId) {
    const found = /^([A-Za-z0-9._-]{1,48}):(\d{1,9})$/.exec(meterId || "");
    return found ? { chargePointId: found[1], connectorId: Number(found[2]) } : null;
  }

  function drawCharger(connector, charger) {
    const known = connector && charger && (charger.connectors || []).find((c) => c.connectorId === connector.connectorId);
    $("vehicle-charger-title").hidden = !known;
    $("vehicle-charger").hidden = !known;
    if (!known) {
      $("vehicle-charger").replaceChildren();
      return;
    }
    tiles($("vehicle-charger"), [
      ["Charge point", connector.chargePointId],
      ["Connector", String(known.connectorId)],
      ["Status", known.status, "word"],
      ["Error code", known.errorCode],
      ["Register kWh", fmt.kwh(known.kwhRegisterAc)],
      ["Voltage", known.voltage === null ? "—" : fmt.num(known.voltage, 1) + " V"],
      ["Last meter value", known.lastUpdatedAt ? fmt.ago(known.lastUpdatedAt) + " ago" : "none yet"],
    ]);
  }

  function openVehicle(id) {
    stopRefresh();
    show("vehicle");
    $("vehicle-title").textContent = "Vehicle " + id;
    $("vehicle").dataset.vehicleId = id;
    loadVehicle(id);
    refreshEvery(() => loadVehicle(id));
  }

  // Devices

  function deviceRow(d) {
    const name =
      d.kind === "vehicle"
        ? el("a", { href: "#/vehicle/" + encodeURIComponent(d.deviceId), text: d.deviceId })
        : d.deviceId;
    return el("tr", { "data-device-id": d.deviceId, "data-kind": d.kind }, [
      el("td", { text: d.kind }),
      el("th", { scope: "row" }, [name]),
      el("td", { text: fmt.time(d.lastSeen) }),
      el("td", { text: fmt.ago(d.lastSeen) }),
    ]);
  }

  async function loadDevices(more) {
    const path =
      "/v1/analytics/fleet/devices" +
      query({ kind: $("devices-kind").value, silentFor: $("devices-silent").value, limit: 500, cursor: more ? state.devices.cursor : null });
    const current = ticket("devices");
    let answer;
    try {
      answer = await api(path);
    } catch (error) {
      if (error.status === 401 || !current()) return;
      message("devices-message", explain(error, "The device list", "/v1/analytics/fleet/devices"));
      if (!more) $("devices-table").querySelector("tbody").replaceChildren();
      return;
    }
    if (!current()) return;
    message("devices-message", "");
    const rows = more ? state.devices.rows.concat(answer.devices || []) : answer.devices || [];
    state.devices.rows = rows;
    state.devices.cursor = answer.nextCursor || null;
    // Newest first: the device that went silent most recently on top.
    const sorted = rows.slice().sort((a, b) => (b.lastSeen || "").localeCompare(a.lastSeen || ""));
    $("devices-table").querySelector("tbody").replaceChildren(...sorted.map(deviceRow));
    if (!rows.length) message("devices-message", "No silent device: every device reported within the chosen time.");
    $("devices-more").hidden = !state.devices.cursor;
    stamp("devices-updated");
  }

  function openDevices() {
    show("devices");
    loadDevices(false);
    refreshEvery(loadDevices);
  }

  // --- routing and sign-in ----------------------------------------------------------------------

  function route() {
    if (!sessionStorage.getItem(KEY_STORAGE)) {
      showSignIn($("signin-error").textContent);
      return;
    }
    const hash = location.hash.replace(/^#\/?/, "");
    const [view, ...rest] = hash.split("/");
    if (view === "vehicle" && rest.length) openVehicle(decodeURIComponent(rest.join("/")));
    else if (view === "devices") openDevices();
    else openFleet();
    $("main").focus({ preventScroll: true });
  }

  // The cheapest fleet-wide read (one row of the live tables' silent list): 401 for an unknown
  // key, 403 for a key that may not read the whole fleet (a device's own key), 200 otherwise.
  const SIGN_IN_PROBE = "/v1/analytics/fleet/devices?limit=1";

  async function signIn(event) {
    event.preventDefault();
    const key = $("api-key").value.trim();
    const error = $("signin-error");
    if (!key) {
      error.textContent = "Enter an API key.";
      return;
    }
    error.textContent = "Checking the key…";
    try {
      await request(SIGN_IN_PROBE, key);
    } catch (problem) {
      if (problem.status === 401) error.textContent = "Wrong API key: the engine does not know this key (or it was revoked).";
      else if (problem.status === 403) error.textContent = "This key may not read the fleet: it needs the read scope for every device.";
      else if (problem.status === 0) error.textContent = "The engine cannot be reached.";
      else error.textContent = "The engine answered " + problem.status + ": " + problem.message;
      $("api-key").select();
      return;
    }
    sessionStorage.setItem(KEY_STORAGE, key);
    error.textContent = "";
    $("api-key").value = "";
    if (!location.hash || location.hash === "#/") location.hash = "#/fleet";
    else route();
  }

  function init() {
    $("signin-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_STORAGE);
      showSignIn("Signed out.");
    });
    for (const th of document.querySelectorAll("#fleet-table th[data-sort]")) {
      th.querySelector("button").addEventListener("click", () => {
        const key = th.dataset.sort;
        if (state.fleet.sort === key) state.fleet.order = state.fleet.order === "asc" ? "desc" : "asc";
        else {
          state.fleet.sort = key;
          state.fleet.order = key === "efficiency" || key === "vehicleId" ? "asc" : "desc";
        }
        loadFleet(false);
      });
    }
    $("fleet-window").addEventListener("change", () => {
      $("fleet-custom").hidden = $("fleet-window").value !== "custom";
      if ($("fleet-window").value !== "custom") loadFleet(false);
    });
    $("fleet-controls").addEventListener("submit", (event) => {
      event.preventDefault();
      loadFleet(false);
    });
    $("fleet-status").addEventListener("change", () => loadFleet(false));
    $("fleet-more").addEventListener("click", () => loadFleet(true));
    $("vehicle-controls").addEventListener("submit", (event) => event.preventDefault());
    $("vehicle-window").addEventListener("change", () => loadVehicle($("vehicle").dataset.vehicleId));
    $("devices-controls").addEventListener("submit", (event) => event.preventDefault());
    $("devices-kind").addEventListener("change", () => loadDevices(false));
    $("devices-silent").addEventListener("change", () => loadDevices(false));
    $("devices-more").addEventListener("click", () => loadDevices(true));
    window.addEventListener("hashchange", route);
    route();
  }

  init();
})();
