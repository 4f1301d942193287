// The sluice console. It talks to the server through /exec, /exp and the
// /console/api calls only, and builds every piece of the page with DOM
// calls and textContent: nothing from the server or the user is ever
// parsed as HTML.
"use strict";

(() => {
  const E = window.SluiceEditor;
  const PAGE = 1000; // rows per /exec page of the grid
  const PAGES_KEPT = 6; // pages the grid holds at once
  const CHART_ROWS = 10000; // rows a chart reads
  const PREVIEW_BYTES = 1 << 20; // head of a CSV sent for its preview
  const POLL_MS = 250; // how often an import's progress is read

  // ---------- small helpers ----------
  const $ = (id) => document.getElementById(id);
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }
  const quoteIdent = (name) => '"' + String(name).replace(/"/g, '""') + '"';
  const quoteText = (s) => "'" + String(s).replace(/'/g, "''") + "'";
  const fmtBytes = (n) => {
    if (n === null || n === undefined) return "";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  };
  const fmtMs = (ms) => ms < 1000 ? ms.toFixed(0) + " ms" : (ms / 1000).toFixed(2) + " s";
  const store = {
    get(key, fallback) {
      try { const v = localStorage.getItem("sluice." + key); return v === null ? fallback : JSON.parse(v); } catch { return fallback; }
    },
    set(key, value) { try { localStorage.setItem("sluice." + key, JSON.stringify(value)); } catch { /* full or disabled */ } },
  };

  // ---------- the token and every call to the server ----------
  let token = sessionStorage.getItem("sluice.token") || "";
  let asking = null;
  function askToken() {
    if (asking) return asking;
    const dialog = $("token-dialog");
    asking = new Promise((resolve) => {
      $("token-input").value = "";
      dialog.addEventListener("close", function done() {
        dialog.removeEventListener("close", done);
        token = $("token-input").value.trim();
        sessionStorage.setItem("sluice.token", token);
        asking = null;
        resolve();
      });
      dialog.showModal();
      $("token-input").focus();
    });
    return asking;
  }
  function headers(extra) {
    const h = Object.assign({}, extra || {});
    if (token) h.Authorization = "Bearer " + token;
    return h;
  }
  // fetch with the token; asks for it and retries on 401/403.
  async function call(url, options) {
    for (;;) {
      const opts = Object.assign({}, options || {});
      opts.headers = headers(opts.headers);
      const r = await fetch(url, opts);
      if (r.status === 401 || r.status === 403) {
        $("server-status").textContent = r.status === 401 ? "token needed" : "wrong token";
        await askToken();
        continue;
      }
      $("server-status").textContent = "";
      return r;
    }
  }
  class QueryError extends Error {
    constructor(message, position) { super(message); this.position = position; }
  }
  // One /exec call; `params` adds limit, count, timings.
  async function exec(query, params, signal) {
    const u = new URLSearchParams(Object.assign({ query }, params || {}));
    const r = await call("/exec?" + u.toString(), { signal });
    const body = await r.json();
    if (!r.ok || body.error) throw new QueryError(body.error || ("HTTP " + r.status), body.position || 0);
    return body;
  }
  const rowsOf = async (query) => {
    const b = await exec(query);
    return (b.dataset || []).map((row) => Object.fromEntries(b.columns.map((c, i) => [c.name, row[i]])));
  };

  // ---------- views ----------
  const views = ["query", "import", "jobs"];
  function showView(name) {
    for (const v of views) {
      $("view-" + v).hidden = v !== name;
      $("view-" + v + "-tab").setAttribute("aria-selected", String(v === name));
    }
    if (name === "jobs") loadJobs();
    if (name === "query" && view) view.requestMeasure();
  }
  for (const v of views) $("view-" + v + "-tab").addEventListener("click", () => showView(v));

  // ---------- schema browser ----------
  const schemaForCompletion = {};
  let openTables = new Set();
  async function loadSchema() {
    const tree = $("schema-tree");
    let tables, sizes, columns;
    try {
      [tables, sizes, columns] = await Promise.all([
        rowsOf("SELECT table_schema, table_name, designated_timestamp, partition_by, row_count, partition_count FROM sys.tables ORDER BY table_schema, table_name"),
        rowsOf("SELECT table_schema, table_name, sum(bytes) AS bytes, sum(file_count) AS files FROM sys.partitions GROUP BY table_schema, table_name"),
        rowsOf("SELECT table_schema, table_name, column_name FROM information_schema.columns"),
      ]);
    } catch (e) {
      tree.replaceChildren(el("li", { class: "error", text: e.message }));
      return;
    }
    for (const k of Object.keys(schemaForCompletion)) delete schemaForCompletion[k];
    for (const c of columns) {
      const key = c.table_schema === "public" ? c.table_name : c.table_schema + "." + c.table_name;
      (schemaForCompletion[key] = schemaForCompletion[key] || []).push(c.column_name);
    }
    const size = new Map(sizes.map((s) => [s.table_schema + "\u0000" + s.table_name, s]));
    const items = [];
    let schema = null;
    for (const t of tables) {
      if (t.table_schema !== schema) {
        schema = t.table_schema;
        items.push(el("li", { class: "schema", role: "none" }, el("h2", { text: schema })));
      }
      items.push(tableItem(t, size.get(t.table_schema + "\u0000" + t.table_name)));
    }
    if (!tables.length) items.push(el("li", { class: "meta", text: "No tables yet: import a file." }));
    tree.replaceChildren(...items);
    refreshCompletion();
  }
  function qualified(t) {
    return t.table_schema === "public" ? quoteIdent(t.table_name) : quoteIdent(t.table_schema) + "." + quoteIdent(t.table_name);
  }
  function tableItem(t, s) {
    const key = t.table_schema + "." + t.table_name;
    const li = el("li", { class: "table", role: "treeitem", "aria-expanded": "false", "data-table": t.table_name });
    const meta = [
      t.partition_by && t.partition_by !== "NONE" ? "by " + t.partition_by : "not partitioned",
      t.designated_timestamp ? "ts " + t.designated_timestamp : null,
      t.row_count + " rows",
      s ? fmtBytes(Number(s.bytes)) + ", " + s.files + " files" : null,
    ].filter(Boolean).join(" · ");
    const columns = el("ul", { class: "columns", role: "group", hidden: true });
    const toggle = el("button", {
      class: "name", text: t.table_name, "aria-label": "Table " + t.table_name,
      onclick: () => expand(!columns.hidden ? false : true),
    });
    async function expand(open) {
      columns.hidden = !open;
      li.setAttribute("aria-expanded", String(open));
      if (open) openTables.add(key); else openTables.delete(key);
      if (!open || columns.childElementCount) return;
      try {
        const cols = await rowsOf("SHOW COLUMNS FROM " + qualified(t));
        columns.replaceChildren(...cols.map((c) => el("li", { role: "treeitem" },
          el("span", { text: c.column }),
          el("span", { class: "type", text: c.type + (c.designated ? " · designated" : "") }))));
      } catch (e) {
        columns.replaceChildren(el("li", { class: "error", text: e.message }));
      }
    }
    const actions = el("div", { class: "actions" },
      el("button", { text: "Copy schema", "aria-label": "Copy schema of " + t.table_name, onclick: () => copySchema(t) }),
      el("button", { text: "Open", "aria-label": "Open " + t.table_name, onclick: () => openTable(t) }),
      el("button", { text: "Rename", "aria-label": "Rename " + t.table_name, onclick: () => renameTable(t) }),
      el("button", { text: "Drop", "aria-label": "Drop " + t.table_name, onclick: () => dropTable(t) }));
    li.append(toggle, el("div", { class: "meta", text: meta }), actions, columns);
    if (openTables.has(key)) expand(true);
    return li;
  }
  async function copySchema(t) {
    try {
      const b = await exec("SHOW CREATE TABLE " + qualified(t));
      const text = b.dataset[0][b.dataset[0].length - 1];
      await navigator.clipboard.writeText(text);
      $("server-status").textContent = "schema of " + t.table_name + " copied";
    } catch (e) {
      $("server-status").textContent = "copy failed: " + e.message;
    }
  }
  function openTable(t) {
    showView("query");
    newTab(t.table_name, "SELECT * FROM " + qualified(t) + " LIMIT -100;");
    runQuery();
  }
  async function ddl(sql) {
    try { await exec(sql); } catch (e) { alert(e.message); }
    await loadSchema();
  }
  function renameTable(t) {
    const to = prompt("Rename table " + t.table_name + " to:", t.table_name);
    if (!to || to === t.table_name) return;
    if (!confirm("Rename " + t.table_name + " to " + to + "?")) return;
    ddl("RENAME TABLE " + qualified(t) + " TO " + quoteIdent(to));
  }
  function dropTable(t) {
    if (!confirm("Drop table " + t.table_name + " and all its data?")) return;
    ddl("DROP TABLE " + qualified(t));
  }
  $("schema-refresh").addEventListener("click", loadSchema);

  // ---------- the editor, its tabs and the history ----------
  let functions = [];
  const completion = new E.Compartment();
  function sqlSupport() {
    return E.sql({ dialect: E.PostgreSQL, upperCaseKeywords: true, schema: Object.assign({}, schemaForCompletion) });
  }
  function functionCompletions() {
    return E.completeFromList(functions.map((f) => ({ label: f, type: "function", apply: f + "(" })));
  }
  function refreshCompletion() {
    if (!view) return;
    const lang = sqlSupport();
    view.dispatch({ effects: completion.reconfigure([lang, lang.language.data.of({ autocomplete: functionCompletions() })]) });
  }
  let tabs = store.get("tabs", null);
  if (!Array.isArray(tabs) || !tabs.length) tabs = [{ title: "Query 1", text: "SELECT 1;" }];
  let active = Math.min(store.get("activeTab", 0), tabs.length - 1);
  let view = null;
  const saveTabs = () => { store.set("tabs", tabs); store.set("activeTab", active); };
  function editorState(text) {
    const lang = sqlSupport();
    return E.EditorState.create({
      doc: text,
      extensions: [
        E.Prec.highest(E.keymap.of([{ key: "Mod-Enter", run: () => { runQuery(); return true; } }])),
        E.basicSetup,
        E.oneDark,
        completion.of([lang, lang.language.data.of({ autocomplete: functionCompletions() })]),
        E.EditorView.updateListener.of((u) => {
          if (u.docChanged) { tabs[active].text = u.state.doc.toString(); saveTabs(); }
        }),
        E.EditorView.contentAttributes.of({ "aria-label": "SQL editor" }),
      ],
    });
  }
  function renderTabs() {
    const bar = $("editor-tabs");
    bar.replaceChildren(...tabs.map((t, i) => el("span", { class: "tab" },
      el("button", { role: "tab", "aria-selected": String(i === active), text: t.title, onclick: () => switchTab(i) }),
      tabs.length > 1 ? el("button", { class: "close", "aria-label": "Close " + t.title, text: "×", onclick: () => closeTab(i) }) : null)));
  }
  function switchTab(i) {
    active = i;
    view.setState(editorState(tabs[i].text));
    saveTabs();
    renderTabs();
  }
  function newTab(title, text) {
    let n = tabs.length + 1;
    while (tabs.some((t) => t.title === "Query " + n)) n++;
    tabs.push({ title: title || "Query " + n, text: text || "" });
    switchTab(tabs.length - 1);
  }
  function closeTab(i) {
    tabs.splice(i, 1);
    switchTab(Math.min(active >= i ? Math.max(active - 1, 0) : active, tabs.length - 1));
  }
  $("tab-new").addEventListener("click", () => newTab());
  function addHistory(text) {
    let h = store.get("history", []);
    h = [text, ...h.filter((q) => q !== text)].slice(0, 50);
    store.set("history", h);
    renderHistory();
  }
  function renderHistory() {
    $("history").replaceChildren(...store.get("history", []).map((q) => el("li", {},
      el("button", { text: q, title: q, onclick: () => { newTab(null, q); } }))));
  }

  // ---------- running a query ----------
  let result = null; // { query, columns, count, pages: Map, started, elapsed }
  let running = null; // AbortController of the query in flight
  function selectedText() {
    const sel = view.state.selection.main;
    if (!sel.empty) return { text: view.state.sliceDoc(sel.from, sel.to), offset: sel.from };
    return { text: view.state.doc.toString(), offset: 0 };
  }
  async function runQuery() {
    const { text, offset } = selectedText();
    const query = text.trim().replace(/;\s*$/, "");
    if (!query) return;
    const lead = text.length - text.trimStart().length;
    if (running) running.abort();
    running = new AbortController();
    $("cancel-query").disabled = false;
    $("query-error").hidden = true;
    view.dispatch(E.setDiagnostics(view.state, []));
    $("result-info").textContent = "running…";
    addHistory(query);
    const started = performance.now();
    try {
      const body = await exec(query, { limit: "0," + PAGE, count: "true", timings: "true" }, running.signal);
      const elapsed = performance.now() - started;
      if (body.ddl || body.dml) {
        result = null;
        clearGrid();
        $("result-info").textContent = (body.ddl ? "DDL" : "DML") + " OK in " + fmtMs(elapsed);
        loadSchema();
        return;
      }
      result = { query, columns: body.columns, count: body.count, pages: new Map([[0, body.dataset]]), elapsed };
      $("result-info").textContent = body.count.toLocaleString("en") + " rows in " + fmtMs(elapsed);
      renderGridHead();
      layoutGrid();
      const sampleBy = /\bsample\s+by\b/i.test(query);
      setResultMode(sampleBy && chartable() ? "chart" : "grid");
    } catch (e) {
      if (e.name === "AbortError") { $("result-info").textContent = "cancelled"; return; }
      showError(e, offset + lead);
    } finally {
      running = null;
      $("cancel-query").disabled = true;
    }
  }
  function showError(e, offset) {
    $("result-info").textContent = "";
    const box = $("query-error");
    box.hidden = false;
    const pos = offset + (e.position || 0);
    box.textContent = e.message + (e instanceof QueryError ? " (at position " + (e.position || 0) + ")" : "");
    if (e instanceof QueryError) {
      const from = Math.min(pos, view.state.doc.length);
      const word = view.state.doc.sliceString(from, Math.min(from + 64, view.state.doc.length)).match(/^[^\s,;()]*/)[0];
      const to = Math.min(from + Math.max(word.length, 1), view.state.doc.length);
      view.dispatch(E.setDiagnostics(view.state, [{ from, to, severity: "error", message: e.message }]));
    }
  }
  $("run").addEventListener("click", runQuery);
  $("cancel-query").addEventListener("click", () => { if (running) running.abort(); });

  // ---------- the results grid: pages fetched on demand, few kept ----------
  const ROW = 24;
  const MAX_HEIGHT = 8e6; // px; taller results scroll proportionally
  const grid = $("grid");
  const body = grid.querySelector(".grid-body");
  const spacer = grid.querySelector(".grid-spacer");
  const rowsBox = grid.querySelector(".grid-rows");
  const head = grid.querySelector(".grid-head");
  let selected = null; // { row, col }
  let fetching = new Set();
  function clearGrid() {
    head.replaceChildren();
    rowsBox.replaceChildren();
    spacer.style.height = "0px";
  }
  function renderGridHead() {
    head.replaceChildren(el("div", { class: "hcell idx", role: "columnheader", text: "#" }),
      ...result.columns.map((c) => el("div", { class: "hcell", role: "columnheader", title: c.name },
        el("span", { text: c.name }), el("span", { class: "type", text: c.type }))));
    selected = null;
  }
  const totalHeight = () => Math.min(result.count * ROW, MAX_HEIGHT);
  function layoutGrid() {
    spacer.style.height = totalHeight() + "px";
    spacer.style.width = (70 + result.columns.length * 160) + "px";
    body.scrollTop = 0;
    drawRows();
  }
  function firstVisibleRow() {
    const h = totalHeight();
    const visible = Math.ceil(body.clientHeight / ROW);
    if (result.count * ROW <= MAX_HEIGHT) return Math.floor(body.scrollTop / ROW);
    const room = Math.max(h - body.clientHeight, 1);
    return Math.floor(body.scrollTop / room * Math.max(result.count - visible, 0));
  }
  function drawRows() {
    if (!result) return;
    const first = firstVisibleRow();
    const visible = Math.ceil(body.clientHeight / ROW) + 1;
    const last = Math.min(first + visible, result.count);
    rowsBox.style.transform = "translateY(" + body.scrollTop + "px)";
    const rows = [];
    for (let r = first; r < last; r++) {
      const page = result.pages.get(Math.floor(r / PAGE));
      const values = page ? page[r % PAGE] : null;
      const cells = [el("div", { class: "cell idx", role: "rowheader", text: String(r + 1) })];
      result.columns.forEach((c, i) => {
        const v = values ? values[i] : undefined;
        const text = v === undefined ? "…" : v === null ? "null" : typeof v === "object" ? JSON.stringify(v) : String(v);
        const sel = selected && selected.row === r && selected.col === i;
        cells.push(el("div", {
          class: "cell" + (v === null ? " null" : "") + (v === undefined ? " loading" : "") + (sel ? " selected" : ""),
          role: "gridcell", "data-row": r, "data-col": i, text, title: text.length > 20 ? text : null,
          "aria-selected": sel ? "true" : null,
        }));
      });
      rows.push(el("div", { class: "grid-row", role: "row" }, ...cells));
      if (!page) fetchPage(Math.floor(r / PAGE));
    }
    rowsBox.replaceChildren(...rows);
    rowsBox.dataset.first = String(first);
    head.scrollLeft = body.scrollLeft;
  }
  async function fetchPage(p) {
    if (!result || fetching.has(p)) return;
    const mine = result;
    fetching.add(p);
    try {
      const b = await exec(mine.query, { limit: p * PAGE + "," + (p + 1) * PAGE });
      if (result !== mine) return;
      mine.pages.set(p, b.dataset);
      // Keep the pages nearest the view; the rest are read again if needed.
      const here = Math.floor(firstVisibleRow() / PAGE);
      const order = [...mine.pages.keys()].sort((a, b2) => Math.abs(a - here) - Math.abs(b2 - here));
      for (const old of order.slice(PAGES_KEPT)) mine.pages.delete(old);
      drawRows();
    } catch (e) {
      if (result === mine) $("result-info").textContent = "page " + p + ": " + e.message;
    } finally {
      fetching.delete(p);
    }
  }
  body.addEventListener("scroll", () => requestAnimationFrame(drawRows));
  new ResizeObserver(() => drawRows()).observe(body);
  rowsBox.addEventListener("click", (ev) => {
    const cell = ev.target.closest(".cell[data-col]");
    if (!cell) return;
    selected = { row: Number(cell.dataset.row), col: Number(cell.dataset.col) };
    grid.focus();
    drawRows();
  });
  function selectedValue() {
    if (!result || !selected) return null;
    const page = result.pages.get(Math.floor(selected.row / PAGE));
    if (!page) return null;
    const v = page[selected.row % PAGE][selected.col];
    return v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
  }
  async function copyCell() {
    const v = selectedValue();
    if (v === null) { $("result-info").textContent = "select a cell first"; return; }
    await navigator.clipboard.writeText(v);
    $("server-status").textContent = "cell copied";
  }
  $("copy-cell").addEventListener("click", copyCell);
  grid.addEventListener("keydown", (ev) => {
    if ((ev.ctrlKey || ev.metaKey) && ev.key === "c") { copyCell(); ev.preventDefault(); return; }
    if (!result || !selected) return;
    const moves = { ArrowDown: [1, 0], ArrowUp: [-1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    const m = moves[ev.key];
    if (!m) return;
    ev.preventDefault();
    selected = {
      row: Math.max(0, Math.min(result.count - 1, selected.row + m[0])),
      col: Math.max(0, Math.min(result.columns.length - 1, selected.col + m[1])),
    };
    const first = firstVisibleRow();
    const visible = Math.floor(body.clientHeight / ROW);
    if (selected.row < first || selected.row >= first + visible) {
      body.scrollTop = result.count * ROW <= MAX_HEIGHT ? selected.row * ROW : body.scrollTop;
    }
    drawRows();
  });

  // ---------- downloads ----------
  async function download(fmt) {
    const q = result ? result.query : selectedText().text.trim().replace(/;\s*$/, "");
    if (!q) return;
    const params = new URLSearchParams({ query: q });
    if (fmt === "parquet") params.set("fmt", "parquet");
    const url = "/exp?" + params.toString();
    const name = fmt === "parquet" ? "result.parquet" : "result.csv";
    if (!token) {
      // The browser streams the file to disk; the page never holds it.
      const a = el("a", { href: url, download: name, hidden: true });
      document.body.append(a); a.click(); a.remove();
      return;
    }
    // A token has to travel in a header, which a plain link cannot send.
    const r = await call(url);
    if (!r.ok) { $("result-info").textContent = "download failed: " + ((await r.json()).error || r.status); return; }
    const blob = await r.blob();
    const href = URL.createObjectURL(blob);
    const a = el("a", { href, download: name, hidden: true });
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(href), 10000);
  }
  $("download-csv").addEventListener("click", () => download("csv"));
  $("download-parquet").addEventListener("click", () => download("parquet"));

  // ---------- the chart ----------
  const TIME_TYPES = new Set(["TIMESTAMP", "TIMESTAMP_NS", "DATE"]);
  const NUMERIC = new Set(["BYTE", "SHORT", "INT", "LONG", "FLOAT", "DOUBLE", "DECIMAL", "LONG128", "LONG256"]);
  let plot = null;
  let chartSeries = null; // chosen y columns by name
  const chartable = () => result && result.columns.some((c) => TIME_TYPES.has(c.type)) && result.columns.some((c) => NUMERIC.has(c.type));
  function setResultMode(mode) {
    const chart = mode === "chart";
    $("show-grid").setAttribute("aria-pressed", String(!chart));
    $("show-chart").setAttribute("aria-pressed", String(chart));
    grid.hidden = chart;
    $("chart-panel").hidden = !chart;
    if (chart) drawChart(); else drawRows();
  }
  $("show-grid").addEventListener("click", () => setResultMode("grid"));
  $("show-chart").addEventListener("click", () => setResultMode("chart"));
  $("chart-type").addEventListener("change", () => drawChart());
  async function drawChart() {
    const box = $("chart");
    if (plot) { plot.destroy(); plot = null; }
    box.replaceChildren();
    if (!chartable()) {
      box.append(el("p", { text: "A chart needs a time column and a numeric column in the result." }));
      return;
    }
    const mine = result;
    const x = mine.columns.findIndex((c) => TIME_TYPES.has(c.type));
    const numeric = mine.columns.map((c, i) => [c, i]).filter(([c]) => NUMERIC.has(c.type));
    if (!chartSeries || !numeric.some(([c]) => chartSeries.has(c.name))) chartSeries = new Set(numeric.map(([c]) => c.name));
    const fs = $("chart-series");
    fs.replaceChildren(el("legend", { text: "Series" }), ...numeric.map(([c]) => el("label", {},
      el("input", { type: "checkbox", checked: chartSeries.has(c.name), "aria-label": "Series " + c.name,
        onchange: (ev) => { if (ev.target.checked) chartSeries.add(c.name); else chartSeries.delete(c.name); drawChart(); } }),
      " " + c.name)));
    let rows = mine.pages.get(0) || [];
    if (mine.count > rows.length) rows = (await exec(mine.query, { limit: "0," + CHART_ROWS })).dataset;
    if (result !== mine) return;
    const ys = numeric.filter(([c]) => chartSeries.has(c.name));
    const points = rows.map((r) => [Date.parse(r[x]) / 1000, ...ys.map(([, i]) => r[i] === null ? null : Number(r[i]))])
      .filter((p) => !Number.isNaN(p[0])).sort((a, b) => a[0] - b[0]);
    const data = [points.map((p) => p[0]), ...ys.map((_, k) => points.map((p) => p[k + 1]))];
    const kind = $("chart-type").value;
    const colors = ["#d14671", "#2f7ed8", "#3fb27f", "#e5a33b", "#8a5cd1", "#1aa6b7"];
    const series = [{}].concat(ys.map(([c], k) => ({
      label: c.name, stroke: colors[k % colors.length], width: 1.5,
      fill: kind === "line" ? undefined : colors[k % colors.length] + "55",
      paths: kind === "bar" ? uPlot.paths.bars({ size: [0.8, 40] }) : undefined,
      points: { show: false },
    })));
    const width = Math.max(box.clientWidth, 300);
    const height = Math.max(box.clientHeight - 40, 200);
    plot = new uPlot({ width, height, series, cursor: { drag: { x: true, y: false } }, scales: { x: { time: true } } }, data, box);
    box.setAttribute("data-points", String(points.length));
    box.setAttribute("aria-label", "Chart of " + ys.map(([c]) => c.name).join(", ") + " over " + mine.columns[x].name + ", " + points.length + " points");
  }
  new ResizeObserver(() => {
    if (plot && !$("chart-panel").hidden) plot.setSize({ width: Math.max($("chart").clientWidth, 300), height: Math.max($("chart").clientHeight - 40, 200) });
  }).observe($("chart"));

  // ---------- import ----------
  const dropZone = $("drop-zone");
  dropZone.addEventListener("dragover", (ev) => { ev.preventDefault(); dropZone.classList.add("over"); });
  dropZone.addEventListener("dragleave", () => dropZone.classList.remove("over"));
  dropZone.addEventListener("drop", (ev) => {
    ev.preventDefault();
    dropZone.classList.remove("over");
    for (const f of ev.dataTransfer.files) importCard(f);
  });
  $("import-files").addEventListener("change", (ev) => {
    for (const f of ev.target.files) importCard(f);
    ev.target.value = "";
  });
  // Uploads `blob` with a byte progress callback; resolves to the upload's JSON.
  function uploadBlob(blob, name, onProgress, holder) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      holder.xhr = xhr;
      xhr.open("POST", "/console/api/upload");
      if (token) xhr.setRequestHeader("Authorization", "Bearer " + token);
      xhr.upload.onprogress = (ev) => onProgress(ev.loaded, ev.lengthComputable ? ev.total : blob.size);
      xhr.onload = async () => {
        holder.xhr = null;
        if (xhr.status === 401 || xhr.status === 403) {
          await askToken();
          uploadBlob(blob, name, onProgress, holder).then(resolve, reject);
          return;
        }
        let body;
        try { body = JSON.parse(xhr.responseText); } catch { body = { error: "HTTP " + xhr.status }; }
        if (xhr.status >= 400 || body.error) reject(new Error(body.error || "HTTP " + xhr.status)); else resolve(body);
      };
      xhr.onerror = () => { holder.xhr = null; reject(new Error("upload failed")); };
      xhr.onabort = () => { holder.xhr = null; reject(new Error("upload cancelled")); };
      const form = new FormData();
      form.append("data", blob, name);
      xhr.send(form);
    });
  }
  async function postJson(url, payload) {
    const r = await call(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload) });
    const b = await r.json().catch(() => ({ error: "HTTP " + r.status }));
    if (!r.ok || b.error) throw new Error(b.error || "HTTP " + r.status);
    return b;
  }
  const tableFromFile = (name) => name.replace(/\.(gz|zst)$/i, "").replace(/\.[^.]*$/, "").replace(/[^\p{L}\p{N}_]+/gu, "_") || "imported";
  const TYPES = ["BOOLEAN", "BYTE", "SHORT", "CHAR", "INT", "LONG", "DATE", "TIMESTAMP", "TIMESTAMP_NS", "FLOAT", "DOUBLE", "STRING", "VARCHAR", "SYMBOL", "UUID", "IPV4", "LONG256", "GEOHASH", "BINARY"];
  const TERMINAL = new Set(["finished", "failed", "cancelled"]);

  function importCard(file) {
    const compressed = /\.(gz|zst)$/i.test(file.name);
    const parquet = /\.parquet$/i.test(file.name);
    const whole = compressed || parquet || file.size <= PREVIEW_BYTES;
    const state = { file, columns: null, upload: null, full: null, holder: {}, jobId: null, stopped: false };
    const tableInput = el("input", { value: tableFromFile(file.name), "aria-label": "Table name" });
    const tsSelect = el("select", { "aria-label": "Designated timestamp" });
    const formatInput = el("input", { placeholder: "detected", "aria-label": "Timestamp format" });
    const partSelect = el("select", { "aria-label": "Partition by" },
      ...["DAY", "HOUR", "WEEK", "MONTH", "YEAR", "NONE"].map((p) => el("option", { value: p, text: p })));
    const onErrorSelect = el("select", { "aria-label": "On error" },
      el("option", { value: "skipRow", text: "skip the row" }), el("option", { value: "skipColumn", text: "skip the value" }),
      el("option", { value: "abort", text: "abort" }));
    const modeSelect = el("select", { "aria-label": "Append or overwrite" },
      el("option", { value: "append", text: "append" }), el("option", { value: "overwrite", text: "overwrite" }));
    const delimiterInput = el("input", { size: 3, placeholder: "auto", "aria-label": "Delimiter" });
    const headerSelect = el("select", { "aria-label": "Header" },
      el("option", { value: "", text: "detect" }), el("option", { value: "true", text: "yes" }), el("option", { value: "false", text: "no" }));
    const dialect = el("div", { class: "dialect", role: "status" });
    const sample = el("div", { class: "wide" });
    const columnsBox = el("div", { class: "wide" });
    const progress = el("progress", { max: 1, value: 0, "aria-label": "Upload progress " + file.name });
    const progressText = el("span", { class: "phase", role: "status" });
    const importProgress = el("progress", { max: 1, value: 0, "aria-label": "Import progress " + file.name, hidden: true });
    const outcome = el("div", { role: "status", "aria-live": "polite" });
    const rejected = el("div", { class: "wide" });
    const previewBtn = el("button", { text: "Preview again", "aria-label": "Preview " + file.name, onclick: () => preview() });
    const importBtn = el("button", { text: "Import", "aria-label": "Import " + file.name, disabled: true, onclick: () => startImport() });
    const cancelBtn = el("button", { text: "Cancel", "aria-label": "Cancel import of " + file.name, onclick: () => cancel() });
    const card = el("section", { class: "import-card", "aria-label": "Import of " + file.name, "data-file": file.name },
      el("h3", { text: file.name + " (" + fmtBytes(file.size) + ")" }),
      el("div", { class: "row" },
        el("label", {}, "Table ", tableInput), el("label", {}, "Mode ", modeSelect),
        el("label", {}, "Timestamp ", tsSelect), el("label", {}, "Format ", formatInput),
        el("label", {}, "Partition ", partSelect), el("label", {}, "On error ", onErrorSelect)),
      el("div", { class: "row" }, el("label", {}, "Delimiter ", delimiterInput), el("label", {}, "Header ", headerSelect), dialect),
      sample, columnsBox,
      el("div", { class: "row" }, previewBtn, importBtn, cancelBtn),
      el("div", { class: "row" }, progress, importProgress, progressText),
      outcome, rejected);
    $("import-list").prepend(card);

    function form(upload) {
      return {
        upload, table: tableInput.value.trim(),
        header: headerSelect.value === "" ? undefined : headerSelect.value === "true",
        delimiter: delimiterInput.value || undefined,
        timestamp: tsSelect.value || undefined,
        format: formatInput.value.trim() || undefined,
        partitionBy: tsSelect.value ? partSelect.value : "NONE",
        onError: onErrorSelect.value,
        overwrite: modeSelect.value === "overwrite",
        columns: (state.columns || []).map((c) => ({ file: c.file, name: c.nameInput.value.trim(), type: c.typeSelect.value || undefined })),
      };
    }
    function fail(message) {
      outcome.replaceChildren(el("span", { class: "error", text: message }));
    }
    async function previewUpload() {
      if (state.upload) return state.upload;
      progressText.textContent = "uploading for the preview…";
      let blob = file;
      if (!whole) {
        // The head of the file up to its last whole line.
        const head = new Uint8Array(await file.slice(0, PREVIEW_BYTES).arrayBuffer());
        const cut = head.lastIndexOf(10);
        blob = file.slice(0, cut > 0 ? cut + 1 : head.length);
      }
      const up = await uploadBlob(blob, file.name, (done, total) => { progress.max = total; progress.value = done; }, state.holder);
      state.upload = up.upload;
      if (whole) state.full = up.upload;
      return state.upload;
    }
    async function preview(reset) {
      outcome.replaceChildren();
      importBtn.disabled = true;
      try {
        const upload = await previewUpload();
        progressText.textContent = "reading…";
        const payload = form(upload);
        if (reset) { delete payload.columns; delete payload.timestamp; delete payload.partitionBy; }
        const p = await postJson("/console/api/preview", payload);
        showPreview(p, reset);
        progressText.textContent = whole ? "ready" : "preview of the first " + fmtBytes(PREVIEW_BYTES);
        importBtn.disabled = false;
      } catch (e) {
        progressText.textContent = "";
        fail(e.message);
      }
    }
    function showPreview(p, reset) {
      const rows = p.report;
      const of = (section) => rows.filter((r) => r[0] === section);
      dialect.textContent = of("dialect").map((r) => r[1] + ": " + r[2] + (r[3] ? " (" + r[3] + ")" : "")).join(" · ");
      const cols = of("column");
      if (reset || !state.columns || state.columns.length !== cols.length) {
        state.columns = cols.map((r) => {
          const from = /from file column '([^']*)'/.exec(r[3]);
          return { file: from ? from[1] : r[1], name: r[1], type: r[2], detail: r[3] };
        });
        // Designated timestamp: the one the analysis chose, else the first
        // timestamp column (a time-series table wants one), else none.
        const isTime = (r) => /^(TIMESTAMP|TIMESTAMP_NS|DATE)$/.test(r[2]);
        const designated = cols.find((r) => /designated timestamp/.test(r[3])) || cols.find(isTime);
        tsSelect.replaceChildren(el("option", { value: "", text: "none" }),
          ...cols.filter((r) => isTime(r) || r === designated)
            .map((r) => el("option", { value: r[1], text: r[1], selected: r === designated })));
        const table = of("table")[0];
        if (table) {
          const unit = /PARTITION BY (\w+)/.exec(table[3]);
          if (unit) partSelect.value = unit[1] === "NONE" && designated ? "DAY" : unit[1];
        }
      }
      state.columns.forEach((c, i) => {
        const r = cols[i];
        c.type = r[2];
        c.detail = (r[1] !== c.file ? "imported as " + r[1] + (r[3] ? "; " : "") : "") + r[3];
      });
      columnsBox.replaceChildren(el("table", { class: "plain", "aria-label": "Columns of " + file.name },
        el("thead", {}, el("tr", {}, el("th", { text: "file column" }), el("th", { text: "name" }), el("th", { text: "type" }), el("th", { text: "detail" }))),
        el("tbody", {}, ...state.columns.map((c) => {
          c.nameInput = c.nameInput || el("input", { value: c.name, "aria-label": "Name of column " + c.file });
          if (!c.typeSelect) {
            c.typeSelect = el("select", { "aria-label": "Type of column " + c.file },
              el("option", { value: "", text: "detected (" + c.type + ")" }), ...TYPES.map((t) => el("option", { value: t, text: t })));
          }
          return el("tr", {}, el("td", { text: c.file }), el("td", {}, c.nameInput), el("td", {}, c.typeSelect), el("td", { text: c.detail }));
        }))));
      const first = p.sample || [];
      sample.replaceChildren(first.length ? el("table", { class: "plain", "aria-label": "First rows of " + file.name },
        el("tbody", {}, ...first.map((r) => el("tr", {}, ...r.map((v) => el("td", { text: v })))))) : el("span"));
      const bad = of("rejected");
      rejected.replaceChildren(bad.length ? el("p", { class: "error", text: bad.length + " rows of the preview would be rejected: " + bad.slice(0, 3).map((r) => r[1] + " " + r[3]).join("; ") }) : el("span"));
    }
    async function startImport() {
      importBtn.disabled = true;
      previewBtn.disabled = true;
      outcome.replaceChildren();
      try {
        if (!state.full) {
          progressText.textContent = "uploading…";
          const started = performance.now();
          const up = await uploadBlob(file, file.name, (done, total) => {
            progress.max = total; progress.value = done;
            const s = (performance.now() - started) / 1000;
            progressText.textContent = "uploading " + fmtBytes(done) + " of " + fmtBytes(total) + (s > 0 ? " (" + fmtBytes(done / s) + "/s)" : "");
          }, state.holder);
          state.full = up.upload;
          forgetUpload(state.upload);
        }
        progress.value = progress.max;
        if (state.stopped) return;
        const { id } = await postJson("/console/api/import", form(state.full));
        state.jobId = id;
        card.setAttribute("data-import-id", id);
        importProgress.hidden = false;
        await follow(id);
      } catch (e) {
        progressText.textContent = "";
        fail(e.message);
        previewBtn.disabled = false;
        importBtn.disabled = false;
      }
    }
    async function follow(id) {
      for (;;) {
        const rows = await rowsOf("SELECT * FROM sys.copy_progress WHERE id = " + quoteText(id));
        const p = rows[0];
        if (p) {
          importProgress.value = p.fraction;
          const eta = p.eta_sec === null ? "" : ", ETA " + p.eta_sec.toFixed(1) + " s";
          progressText.textContent = (p.phase || p.status) + " " + (100 * p.fraction).toFixed(0) + " %" + eta +
            ", " + p.mb_per_sec.toFixed(1) + " MB/s";
        }
        const log = await rowsOf("SELECT * FROM sys.text_import_log WHERE id = " + quoteText(id) + " AND phase IS NULL AND status <> 'started'");
        if (log.length && TERMINAL.has(log[log.length - 1].status)) return finish(id, log[log.length - 1]);
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    }
    async function finish(id, last) {
      cancelBtn.disabled = true;
      card.setAttribute("data-status", last.status);
      if (last.status === "finished") importProgress.value = 1;
      progressText.textContent = last.status;
      outcome.replaceChildren(el("span", { class: last.status === "finished" ? "done" : "error",
        text: last.status + ": " + (last.rows_imported || 0) + " rows imported, " + (last.errors || 0) + " rejected" + (last.message ? " (" + last.message + ")" : "") }));
      const errs = await rowsOf("SELECT line, column_name, value, message FROM sys.text_import_errors WHERE id = " + quoteText(id) + " LIMIT 100");
      if (errs.length) {
        rejected.replaceChildren(el("table", { class: "plain", "aria-label": "Rejected rows of " + file.name },
          el("thead", {}, el("tr", {}, ...["line", "column", "value", "why"].map((h) => el("th", { text: h })))),
          el("tbody", {}, ...errs.map((e) => el("tr", {}, ...[e.line, e.column_name, e.value, e.message].map((v) => el("td", { text: v === null ? "" : String(v) })))))));
      }
      loadSchema();
    }
    function forgetUpload(id) {
      if (id && id !== state.full) call("/console/api/upload/" + encodeURIComponent(id), { method: "DELETE" }).catch(() => {});
    }
    async function cancel() {
      state.stopped = true;
      if (state.holder.xhr) state.holder.xhr.abort();
      if (state.jobId) {
        try {
          await exec("COPY " + quoteText(state.jobId) + " CANCEL");
          progressText.textContent = "cancelling…";
        } catch (e) { fail(e.message); }
        return;
      }
      forgetUpload(state.upload);
      if (state.full !== state.upload) forgetUpload(state.full);
      card.setAttribute("data-status", "cancelled");
      progressText.textContent = "cancelled";
      cancelBtn.disabled = true;
      importBtn.disabled = true;
    }
    preview(true);
  }

  // ---------- imports and exports ----------
  function plainTable(box, rows, columns) {
    box.replaceChildren(el("thead", {}, el("tr", {}, ...columns.map(([h]) => el("th", { text: h })))),
      el("tbody", {}, ...rows.map((r) => el("tr", {}, ...columns.map(([, f]) => {
        const v = f(r);
        return el("td", { text: v === null || v === undefined ? "" : String(v), title: v === null || v === undefined ? null : String(v) });
      })))));
  }
  async function loadJobs() {
    try {
      const log = await rowsOf("SELECT * FROM sys.text_import_log ORDER BY ts DESC LIMIT 2000");
      const jobs = new Map();
      for (const r of log.reverse()) {
        const j = jobs.get(r.id) || { id: r.id, table: r.table_name, file: r.file, start: r.ts, end: r.ts, status: r.status, phase: r.phase, message: null, rows: null, errors: 0 };
        j.end = r.ts;
        if (r.phase === null) { j.status = r.status; if (r.message) j.message = r.message; }
        else if (r.status === "failed") j.message = r.message;
        if (r.phase) j.phase = r.phase;
        if (r.rows_imported !== null) j.rows = r.rows_imported;
        j.errors = Math.max(j.errors, r.errors || 0);
        jobs.set(r.id, j);
      }
      const list = [...jobs.values()].reverse();
      const secs = (j) => ((Date.parse(j.end) - Date.parse(j.start)) / 1000).toFixed(2) + " s";
      plainTable($("jobs-imports"), list, [["id", (j) => j.id], ["table", (j) => j.table], ["file", (j) => j.file],
        ["started", (j) => j.start], ["status", (j) => j.status], ["duration", secs], ["rows", (j) => j.rows],
        ["errors", (j) => j.errors], ["message", (j) => j.message]]);
      const exportLog = await rowsOf("SELECT * FROM sys.copy_export_log ORDER BY ts DESC LIMIT 2000");
      const exports = new Map();
      for (const r of exportLog.reverse()) {
        const j = exports.get(r.id) || { id: r.id, table: r.table_name, path: r.export_path, start: r.ts, errors: 0, message: null };
        Object.assign(j, { end: r.ts, status: r.status, phase: r.phase, rows: r.num_exported_rows, files: r.num_exported_files });
        if (r.message) j.message = r.message;
        j.errors = Math.max(j.errors, r.errors || 0);
        exports.set(r.id, j);
      }
      plainTable($("jobs-exports"), [...exports.values()].reverse(), [["id", (j) => j.id], ["table", (j) => j.table],
        ["path", (j) => j.path], ["started", (j) => j.start], ["phase", (j) => j.phase], ["status", (j) => j.status],
        ["duration", secs], ["rows", (j) => j.rows], ["files", (j) => j.files], ["errors", (j) => j.errors], ["message", (j) => j.message]]);
      const history = await rowsOf("SELECT * FROM sys.copy_history LIMIT 500");
      const cols = history.length ? Object.keys(history[0]) : ["id", "table_name", "file", "size", "rows_imported", "status"];
      plainTable($("jobs-history"), history, cols.map((c) => [c, (r) => r[c]]));
    } catch (e) {
      $("jobs-imports").replaceChildren(el("caption", { class: "error", text: e.message }));
    }
  }
  $("jobs-refresh").addEventListener("click", loadJobs);

  // ---------- start ----------
  async function start() {
    view = new E.EditorView({ state: editorState(tabs[active].text), parent: $("editor") });
    renderTabs();
    renderHistory();
    await loadSchema();
    try {
      functions = [...new Set((await rowsOf("SELECT DISTINCT routine_name FROM information_schema.routines")).map((r) => r.routine_name))].sort();
      refreshCompletion();
    } catch { /* completion keeps keywords and tables */ }
    document.body.setAttribute("data-ready", "true");
  }
  // Hooks the browser tests read: the grid's held pages and the view.
  window.sluiceConsole = {
    heldPages: () => (result ? [...result.pages.keys()] : []),
    // The rows drawn are the ones scrolled to, with their values.
    settled: () => !!result && rowsBox.dataset.first === String(firstVisibleRow()) && !rowsBox.querySelector(".loading"),
    run: runQuery,
    setText: (text) => view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } }),
    select: (from, to) => view.dispatch({ selection: { anchor: from, head: to } }),
  };
  start();
})();
