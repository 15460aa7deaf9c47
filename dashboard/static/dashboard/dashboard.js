/* Python Logger explorer: log in, then one query (the `query` language) over a time range
 * drives a histogram of the matches (the stats API, split by category or severity), a table of
 * them with infinite scroll (the search API's cursor), the live tail and the export.
 *
 * The state (query, range, split) is the page's URL, so a search can be shared and a reload
 * restores it. The tokens live only in the `session` object below, never in web storage or a
 * cookie, so closing or reloading the tab logs out. Every piece of data reaches the page through
 * textContent or an SVG attribute, never as parsed HTML.
 */
(() => {
  "use strict";

  // Bottom of the stack first; the server page lists them, so they are named in one place.
  const CATEGORIES = document.getElementById("chart").dataset.categories.split(" ");
  const PAGE_SIZE = 25;
  const MINUTE_MS = 60 * 1000;
  const HOUR_MS = 60 * MINUTE_MS;
  const DAY_MS = 24 * HOUR_MS;
  const RANGES = { "15m": 15 * MINUTE_MS, "1h": HOUR_MS, "24h": DAY_MS, "7d": 7 * DAY_MS };
  const RANGE_DEFAULT = "24h";
  const SPLITS = ["category", "severity"];
  // OpenTelemetry's SeverityNumber ranges, as the stats API names them (tracker/series.py).
  const SEVERITY_LEVELS = [
    [1, "TRACE"], [5, "DEBUG"], [9, "INFO"], [13, "WARN"], [17, "ERROR"], [21, "FATAL"],
  ];
  // A stored field (as the search API returns it) -> the query language's name for it. Fields
  // not listed (counts, random numbers, times of tracking) cannot be searched on.
  const QUERY_FIELDS = {
    category: "category", severity_text: "severity", severity_number: "severity",
    service_name: "service", trace_id: "trace_id", span_id: "span_id",
    message_id: "message_id", request_id: "request_id", user_message: "message",
  };
  const TEXT_MAX = 256;
  const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

  // `admin`: whether the user may search by user_id (an admin sees everyone's messages).
  const session = { access: null, refresh: null, username: null, admin: false };
  // Bumped by every new request of a kind, so a slow older answer never overwrites a newer one.
  const seq = { stats: 0, search: 0 };
  // What the page shows now; `state` is also the URL.
  const state = { query: "", range: RANGE_DEFAULT, from: "", to: "", split: "category" };
  let lastStats = null;
  let nextPage = null;
  let refreshing = null;
  let statsZone = ZONE;

  const $ = (id) => document.getElementById(id);
  const el = {
    login: $("login"), loginForm: $("login-form"), username: $("username"),
    password: $("password"), loginMessage: $("login-message"), loginSubmit: $("login-submit"),
    dashboard: $("dashboard"), session: $("session"), whoami: $("whoami"), logout: $("logout"),
    searchForm: $("search-form"), q: $("q"), range: $("range"), customRange: $("custom-range"),
    from: $("from"), to: $("to"), split: $("split"), refresh: $("refresh"),
    searchError: $("search-error"), statsPanel: $("stats-panel"), statsError: $("stats-error"),
    total: $("total-total"), chartWrap: $("chart-wrap"), chart: $("chart"), legend: $("legend"),
    caption: $("chart-caption"), resultsPanel: $("results-panel"), count: $("search-count"),
    results: $("results"), resultsBody: $("results-body"), more: $("more"),
    liveToggle: $("live-toggle"), liveState: $("live-state"), exportButton: $("export"),
    alertsView: $("alerts-view"), navExplorer: $("nav-explorer"), navAlerts: $("nav-alerts"),
    alertCreate: $("alert-create"), alertCreated: $("alert-created"),
  };
  // Which page of the app shows: "explorer" or "alerts" (the URL's `view`).
  let view = "explorer";

  // --- HTTP ------------------------------------------------------------------------------

  /** An answer other than 2xx: the text to show (the JSON `detail`, or field errors). */
  class ApiError extends Error {
    constructor(message, data = null) {
      super(message);
      this.data = data;
    }
  }

  /** The session ended (401 that a refresh could not cure); the login form is already shown. */
  class SessionEnded extends Error {}

  function describeError(data, status) {
    if (data && typeof data === "object") {
      if (data.detail !== undefined) return String(data.detail);
      // DRF's validation shape: {field: [messages]}.
      const parts = Object.entries(data).map(
        ([field, messages]) => `${field}: ${[].concat(messages).join(" ")}`,
      );
      if (parts.length) return parts.join("; ");
    }
    return `The server answered ${status}.`;
  }

  async function send(path, { method = "GET", body, auth = true } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (auth && session.access) headers.Authorization = `Bearer ${session.access}`;
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null; // a proxy's HTML error page: describeError falls back to the status
    }
    return { status: response.status, ok: response.ok, data };
  }

  function refreshSession() {
    if (!session.refresh) return Promise.resolve(false);
    // One refresh at a time: refresh tokens are single-use, so a second concurrent refresh
    // with the same token would be refused and end the session.
    refreshing ??= send("/api/auth/refresh/", {
      method: "POST", body: { refresh: session.refresh }, auth: false,
    })
      .then(({ ok, data }) => {
        if (!ok) return false;
        session.access = data.access;
        session.refresh = data.refresh;
        return true;
      })
      .catch(() => false)
      .finally(() => { refreshing = null; });
    return refreshing;
  }

  /** Call the API with the bearer token; on 401 refresh once, then fall back to the login form. */
  async function api(path, options = {}) {
    const tokenUsed = session.access;
    let answer = await send(path, options);
    if (answer.status === 401) {
      // Logged out while this call was in flight: the login form is already up.
      if (session.access === null) throw new SessionEnded();
      // Another call may have refreshed the token while this one was in flight.
      const renewed = session.access !== tokenUsed || (await refreshSession());
      if (renewed) answer = await send(path, options);
    }
    if (answer.status === 401) {
      showLogin(`${describeError(answer.data, 401)} Please log in again.`, true);
      throw new SessionEnded();
    }
    if (!answer.ok) throw new ApiError(describeError(answer.data, answer.status), answer.data);
    return answer.data;
  }

  function showMessage(node, text) {
    node.textContent = text;
    node.hidden = !text;
  }

  function showFailure(node, error) {
    if (error instanceof SessionEnded) return;
    showMessage(
      node,
      error instanceof ApiError ? error.message : `Could not reach the server (${error.message}).`,
    );
  }

  // --- Session ---------------------------------------------------------------------------

  function showLogin(message = "", isError = false) {
    liveStop();
    session.access = session.refresh = session.username = null;
    session.admin = false;
    seq.stats += 1;
    seq.search += 1;
    el.dashboard.hidden = true;
    el.alertsView.hidden = true;
    el.session.hidden = true;
    el.login.hidden = false;
    el.loginMessage.classList.toggle("message-error", isError);
    showMessage(el.loginMessage, message);
    el.password.value = "";
    el.username.focus();
  }

  function showDashboard() {
    el.whoami.textContent = session.username;
    el.login.hidden = true;
    el.session.hidden = false;
    showMessage(el.statsError, "");
    showMessage(el.searchError, "");
    // The URL may name a search (shared, or from before a reload): run that one.
    readUrl();
    showView();
    api("/api/auth/me/").then((me) => { session.admin = me.role === "admin"; }).catch(() => {});
  }

  /** Show the page `view` names: the explorer (running its search) or the alert rules. */
  function showView() {
    el.dashboard.hidden = view !== "explorer";
    el.alertsView.hidden = view !== "alerts";
    for (const [link, name] of [[el.navExplorer, "explorer"], [el.navAlerts, "alerts"]]) {
      if (name === view) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    if (view === "alerts") alerts.showRules();
    else run({ push: false });
  }

  function navigate(event, name) {
    event.preventDefault();
    if (name === view) return;
    view = name;
    if (view === "alerts") window.history.pushState(null, "", `${window.location.pathname}?view=alerts`);
    else writeUrl(true);
    showView();
  }

  /** Open `query` in the explorer (from an alert rule), over the range shown before. */
  function openQuery(query) {
    state.query = query;
    fillForm();
    view = "explorer";
    writeUrl(true);
    showView();
  }

  async function logIn(event) {
    event.preventDefault();
    const username = el.username.value.trim();
    const password = el.password.value;
    if (!username || !password) {
      showMessage(el.loginMessage, "Enter your username and password.");
      el.loginMessage.classList.add("message-error");
      return;
    }
    el.loginSubmit.disabled = true;
    try {
      const answer = await send("/api/auth/login/", {
        method: "POST", body: { username, password }, auth: false,
      });
      if (!answer.ok) throw new ApiError(describeError(answer.data, answer.status));
      session.access = answer.data.access;
      session.refresh = answer.data.refresh;
      session.username = username;
      el.password.value = "";
      showDashboard();
    } catch (error) {
      el.loginMessage.classList.add("message-error");
      showFailure(el.loginMessage, error);
    } finally {
      el.loginSubmit.disabled = false;
    }
  }

  function logOut() {
    // Revoke both tokens server-side; the page forgets them whatever the answer. `send` reads
    // the token before its first await, so clearing the session right after is safe.
    send("/api/auth/logout/", { method: "POST", body: { refresh: session.refresh } })
      .catch(() => {});
    showLogin("You have logged out.");
  }

  // --- State: the form, the URL ----------------------------------------------------------

  /** A datetime-local input's value (local wall time) as an ISO instant, or "" if blank/bad. */
  function localToIso(value) {
    if (!value) return "";
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? "" : date.toISOString();
  }

  /** An ISO instant as a datetime-local value in this browser's zone. */
  function isoToLocal(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return "";
    const local = new Date(date.getTime() - date.getTimezoneOffset() * MINUTE_MS);
    return local.toISOString().slice(0, 19);
  }

  function showCustomRange() {
    el.customRange.hidden = el.range.value !== "custom";
  }

  /** Put `state` into the form. */
  function fillForm() {
    el.q.value = state.query;
    el.range.value = state.range;
    el.split.value = state.split;
    el.from.value = state.from ? isoToLocal(state.from) : "";
    el.to.value = state.to ? isoToLocal(state.to) : "";
    showCustomRange();
  }

  /** Read the form into `state`; false (with the reason shown) when the custom range is bad. */
  function readForm() {
    const range = el.range.value;
    let from = "";
    let to = "";
    if (range === "custom") {
      from = localToIso(el.from.value);
      to = localToIso(el.to.value);
      if (!from || !to) return refuseRange("Enter both ends of the custom range.");
      if (from > to) return refuseRange("The custom range must start before it ends.");
    }
    Object.assign(state, { query: el.q.value, range, from, to, split: el.split.value });
    return true;
  }

  function refuseRange(text) {
    showMessage(el.searchError, text);
    (el.from.value ? el.to : el.from).focus();
    return false;
  }

  /** Read `state` from the URL's query string (unknown values fall back to the defaults). */
  function readUrl() {
    const params = new URLSearchParams(window.location.search);
    view = params.get("view") === "alerts" ? "alerts" : "explorer";
    // The alerts page keeps the explorer's search of before, to come back to.
    if (view === "alerts") return;
    const range = params.get("range") || RANGE_DEFAULT;
    const split = params.get("split");
    state.query = params.get("query") || "";
    state.split = SPLITS.includes(split) ? split : "category";
    state.range = range in RANGES || range === "custom" ? range : RANGE_DEFAULT;
    state.from = state.to = "";
    if (state.range === "custom") {
      state.from = localToIso(params.get("from") || "");
      state.to = localToIso(params.get("to") || "");
      if (!state.from || !state.to) state.range = RANGE_DEFAULT;
    }
    fillForm();
  }

  /** `state` as the page's URL; a new history entry for a new search, so Back returns to it. */
  function writeUrl(push) {
    const params = new URLSearchParams();
    if (state.query) params.set("query", state.query);
    params.set("range", state.range);
    if (state.range === "custom") {
      params.set("from", state.from);
      params.set("to", state.to);
    }
    params.set("split", state.split);
    const url = `${window.location.pathname}?${params}`;
    if (url === `${window.location.pathname}${window.location.search}`) return;
    if (push) window.history.pushState(null, "", url);
    else window.history.replaceState(null, "", url);
  }

  /** The range's two ends as instants; a preset ends now, at the moment it is asked. */
  function currentRange() {
    if (state.range === "custom") return { from: state.from, to: state.to };
    const to = new Date();
    return { from: new Date(to.getTime() - RANGES[state.range]).toISOString(), to: to.toISOString() };
  }

  /** A bucket size that gives the range between about 15 and 200 bars. */
  function intervalFor(from, to) {
    const span = new Date(to).getTime() - new Date(from).getTime();
    if (span <= 3 * HOUR_MS) return "minute";
    if (span <= 8 * DAY_MS) return "hour";
    if (span <= 200 * DAY_MS) return "day";
    if (span <= 4 * 365 * DAY_MS) return "week";
    return "month";
  }

  // --- The query -------------------------------------------------------------------------

  /** A value as the query language reads it back exactly: bare when plain, else a phrase. */
  function quoteValue(value) {
    const text = String(value);
    if (/^[A-Za-z0-9_.]+$/.test(text) && !/^(AND|OR|NOT|TO)$/.test(text)) return text;
    return `"${text.replace(/[\\"]/g, (char) => `\\${char}`)}"`;
  }

  /** `clause` ANDed onto the query (the query in parentheses when it has an OR of its own). */
  function queryWith(clause) {
    const current = el.q.value.trim();
    if (!current) return clause;
    if (current === clause || current.endsWith(` AND ${clause}`)) return current;
    const base = /\bOR\b/.test(current) ? `(${current})` : current;
    return `${base} AND ${clause}`;
  }

  /** Add `field:value` (or exclude it) to the query, and search. */
  function addToQuery(clause, exclude) {
    let term = clause;
    if (exclude) term = clause.startsWith("NOT ") ? clause.slice(4) : `-${clause}`;
    el.q.value = queryWith(term);
    startSearch();
  }

  /** Show a refused query: the API's message, and the query with its position marked. */
  function showQueryError(error) {
    const messages = error instanceof ApiError && error.data && error.data.query;
    const text = messages ? String([].concat(messages)[0]) : "";
    const found = /at position (\d+)/.exec(text);
    if (!found) {
      showFailure(el.searchError, error);
      return;
    }
    const query = state.query;
    const position = Math.min(Number(found[1]), query.length);
    const echo = document.createElement("code");
    echo.className = "query-echo";
    echo.append(query.slice(0, position));
    const mark = document.createElement("mark");
    // At the end there is no character to mark: a caret shows where something was expected.
    mark.textContent = query.slice(position, position + 1) || "\u2038";
    mark.title = `Position ${position}`;
    echo.append(mark, query.slice(position + 1));
    const what = document.createElement("span");
    what.textContent = text;
    el.searchError.replaceChildren(what, echo);
    el.searchError.hidden = false;
    el.q.setAttribute("aria-invalid", "true");
    // The caret goes where the problem is, ready to fix it.
    if (el.q.value === query) {
      el.q.focus();
      el.q.setSelectionRange(position, Math.min(position + 1, query.length));
    }
  }

  function clearErrors() {
    showMessage(el.searchError, "");
    el.q.removeAttribute("aria-invalid");
  }

  // --- Histogram -------------------------------------------------------------------------

  /** The series of a stats answer: the API names them for severity; categories are known. */
  function seriesOf(stats) {
    if (stats.series) return stats.series;
    return CATEGORIES.map((name) => ({ name, query: `category:${name}` }));
  }

  function seriesClass(name) {
    return `series-${name.toLowerCase()}`;
  }

  function drawChart(stats) {
    el.chart.dataset.split = stats.split || "category";
    const width = Math.max(320, Math.floor(el.chartWrap.clientWidth));
    window.loggerChart(el.chart, { width, stats, series: seriesOf(stats), seriesClass });
  }

  /** The legend: one button per series, with its total; a click adds the series' query. */
  function drawLegend(stats) {
    const items = seriesOf(stats).map(({ name, query }) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "legend-item";
      button.dataset.query = query;
      button.title = `Add ${query} to the query (Alt or Shift: exclude it)`;
      const swatch = document.createElement("i");
      swatch.className = `swatch ${seriesClass(name)}`;
      const count = document.createElement("span");
      count.className = "legend-count";
      count.textContent = (stats.totals[name] || 0).toLocaleString();
      button.append(swatch, name, " ", count);
      item.append(button);
      return item;
    });
    el.legend.replaceChildren(...items);
  }

  function formatTime(iso, options = { dateStyle: "medium", timeStyle: "short" }) {
    try {
      return new Intl.DateTimeFormat(undefined, { ...options, timeZone: ZONE }).format(new Date(iso));
    } catch {
      return iso; // a zone this browser does not know
    }
  }

  function showStats(stats) {
    lastStats = stats;
    el.total.textContent = stats.totals.total.toLocaleString();
    const span = `${formatTime(stats.from)} – ${formatTime(stats.to)}`;
    el.caption.textContent = `${span} · by ${stats.interval} · ${stats.tz}`;
    drawLegend(stats);
    drawChart(stats);
  }

  function clearStats() {
    lastStats = null;
    el.chart.replaceChildren();
    el.legend.replaceChildren();
    el.total.textContent = "0";
    el.caption.textContent = "";
  }

  async function loadStats({ from, to }) {
    const mine = ++seq.stats;
    const params = new URLSearchParams({
      from, to, interval: intervalFor(from, to), tz: statsZone, split: state.split,
    });
    if (state.query) params.set("query", state.query);
    el.statsPanel.setAttribute("aria-busy", "true");
    try {
      const stats = await api(`/api/tracker/stats/?${params}`);
      if (mine !== seq.stats) return;
      showMessage(el.statsError, "");
      showStats(stats);
    } catch (error) {
      if (mine !== seq.stats) return;
      // The server's zone database may not know this browser's zone: count in UTC instead.
      if (error instanceof ApiError && error.data && error.data.tz && statsZone !== "UTC") {
        statsZone = "UTC";
        loadStats({ from, to });
        return;
      }
      // A refused query is shown once, at the query bar (the search says the same); the
      // bars of the query before it go, so that they are not taken for this one's.
      if (error instanceof ApiError && error.data && error.data.query) clearStats();
      else showFailure(el.statsError, error);
    } finally {
      if (mine === seq.stats) el.statsPanel.removeAttribute("aria-busy");
    }
  }

  // --- Results ---------------------------------------------------------------------------

  function cell(row, className, text) {
    const td = row.insertCell();
    td.className = className;
    td.textContent = text;
    return td;
  }

  function severityName(message) {
    const number = Number(message.severity_number) || 0;
    const level = SEVERITY_LEVELS.filter(([low]) => number >= low).pop();
    return level ? level[1] : "";
  }

  function badge(text, className) {
    const span = document.createElement("span");
    span.className = `badge ${className}`;
    span.textContent = text;
    return span;
  }

  /** A row of `body` for item `id`, at `at`, opening with its expand button (`label`). */
  function expandableRow(body, id, label, at = -1) {
    const row = body.insertRow(at);
    row.className = "row";
    row.dataset.id = id;
    const toggle = document.createElement("button");
    toggle.type = "button";
    toggle.className = "expand";
    toggle.setAttribute("aria-expanded", "false");
    toggle.setAttribute("aria-label", label);
    const first = row.insertCell();
    first.className = "toggle";
    first.append(toggle);
    return row;
  }

  /** Fill a table row with one message; `at` is where it goes (-1: the end, 0: the top). */
  function addRow(message, at = -1) {
    const row = expandableRow(el.resultsBody, message.message_id, "Show every field", at);
    const created = formatTime(message.created_time, { dateStyle: "medium", timeStyle: "medium" });
    cell(row, "when", created).title = message.created_time;
    cell(row, "category", "").append(badge(message.category, seriesClass(String(message.category))));
    const level = severityName(message);
    const severity = cell(row, "severity", "");
    if (message.severity_text || level) {
      severity.append(badge(message.severity_text || level, seriesClass(level || "unset")));
    }
    cell(row, "service", message.service_name || "");
    cell(row, "text", message.user_message);
    // The document travels with its row, for the expanded view.
    rowMessages.set(row, message);
    return row;
  }

  const rowMessages = new WeakMap();

  /** Every field of a message as (label, value, query clause or null) rows. */
  function fieldsOf(message) {
    const fields = [];
    for (const [name, value] of Object.entries(message)) {
      if (value === null || value === undefined || value === "") continue;
      if (name === "attributes") {
        for (const attribute of [].concat(value)) {
          const [key, ...rest] = String(attribute).split(":");
          const text = rest.join(":");
          const clickable = /^[A-Za-z0-9_.-]+$/.test(key);
          const clause = clickable ? `attributes.${key}:${quoteValue(text)}` : null;
          fields.push([`attributes.${key}`, text, clause]);
        }
        continue;
      }
      const field = QUERY_FIELDS[name] || (name === "user_id" && session.admin ? name : null);
      const shown = typeof value === "object" ? JSON.stringify(value) : String(value);
      // The language takes a text of at most TEXT_MAX characters (tracker/query.py).
      const searchable = field && !(field === "message" && shown.length > TEXT_MAX);
      fields.push([name, shown, searchable ? `${field}:${quoteValue(shown)}` : null]);
    }
    return fields;
  }

  function detailRow(row) {
    const message = rowMessages.get(row);
    const detail = document.createElement("tr");
    detail.className = "detail";
    const td = detail.insertCell();
    td.colSpan = row.cells.length;
    const list = document.createElement("dl");
    list.className = "fields";
    list.setAttribute("aria-label", "Every field of this message");
    for (const [name, value, clause] of fieldsOf(message)) {
      const term = document.createElement("dt");
      term.textContent = name;
      const definition = document.createElement("dd");
      if (clause) {
        const add = document.createElement("button");
        add.type = "button";
        add.className = "field-value";
        add.dataset.query = clause;
        add.textContent = value;
        add.title = `Add ${clause} to the query (Alt or Shift: exclude it)`;
        const exclude = document.createElement("button");
        exclude.type = "button";
        exclude.className = "field-exclude";
        exclude.dataset.query = clause;
        exclude.dataset.exclude = "true";
        exclude.textContent = "\u2212";
        exclude.setAttribute("aria-label", `Exclude ${clause}`);
        exclude.title = `Exclude ${clause}`;
        definition.append(add, exclude);
      } else {
        definition.textContent = value;
      }
      list.append(term, definition);
    }
    td.append(list);
    return detail;
  }

  function toggleRow(button) {
    const row = button.closest("tr");
    const open = button.getAttribute("aria-expanded") === "true";
    const next = row.nextElementSibling;
    if (open) {
      if (next && next.classList.contains("detail")) next.remove();
      button.setAttribute("aria-expanded", "false");
      button.setAttribute("aria-label", "Show every field");
      return;
    }
    const detail = detailRow(row);
    detail.id = `detail-${row.dataset.id}`;
    row.after(detail);
    button.setAttribute("aria-controls", detail.id);
    button.setAttribute("aria-expanded", "true");
    button.setAttribute("aria-label", "Hide the fields");
  }

  function onResultsClick(event) {
    const target = event.target.closest("button");
    if (target && target.classList.contains("expand")) {
      toggleRow(target);
    } else if (target && target.dataset.query) {
      addToQuery(target.dataset.query, target.dataset.exclude === "true" || event.altKey || event.shiftKey);
    } else if (!event.target.closest("tr.detail, a, button") && !window.getSelection().toString()) {
      // A click anywhere on a row (not a selection of its text) opens it too.
      const row = event.target.closest("tr.row");
      if (row) toggleRow(row.querySelector("button.expand"));
    }
  }

  function onLegendClick(event) {
    const button = event.target.closest("button[data-query]");
    if (button) addToQuery(button.dataset.query, event.altKey || event.shiftKey);
  }

  function messageRows() {
    return el.resultsBody.querySelectorAll("tr.row").length;
  }

  function showPage(page, append) {
    if (!append) {
      el.resultsBody.replaceChildren();
      live.shown = 0;
    }
    for (const message of page.results) addRow(message);
    const shown = messageRows();
    const noun = page.count === 1 ? "message" : "messages";
    const total = `${page.count.toLocaleString()} ${noun}`;
    if (page.count) {
      const what = state.query ? `${total} match “${state.query}”` : `${total}, newest first`;
      el.count.textContent = `${what} · showing ${shown.toLocaleString()}`;
      live.countText = el.count.textContent;
    } else {
      el.count.textContent = state.query
        ? `No message matches “${state.query}” in this range.`
        : "No messages in this range.";
      live.countText = "";
    }
    // Messages that arrived live while this page loaded stay on top of it.
    if (!append) liveReplay();
    el.results.hidden = messageRows() === 0;
    nextPage = page.next;
    el.more.hidden = !nextPage;
    // The next page comes by itself if the end of this one is already in view.
    if (nextPage && moreInView) loadMore();
  }

  /** Path and query of a `next` link: the token must only ever go back to this origin. */
  function sameOriginPath(link) {
    const url = new URL(link, window.location.href);
    return `${url.pathname}${url.search}`;
  }

  async function runSearch(path, append) {
    const mine = ++seq.search;
    // What arrives live while a new first page loads is shown again on top of it.
    if (!append) live.sinceSearch = [];
    el.resultsPanel.setAttribute("aria-busy", "true");
    el.more.disabled = true;
    try {
      const page = await api(path);
      if (mine !== seq.search) return;
      el.more.disabled = false;
      if (!append) clearErrors();
      showPage(page, append);
    } catch (error) {
      if (mine !== seq.search) return;
      if (!append) {
        el.resultsBody.replaceChildren();
        el.results.hidden = true;
        el.more.hidden = true;
        el.count.textContent = "";
      }
      showQueryError(error);
    } finally {
      if (mine === seq.search) {
        el.resultsPanel.removeAttribute("aria-busy");
        el.more.disabled = false;
      }
    }
  }

  /** Search, histogram and (when on) the live tail for `state`; the URL follows. */
  function run({ push = true } = {}) {
    writeUrl(push);
    showMessage(el.alertCreated, "");
    const range = currentRange();
    const params = new URLSearchParams({ page_size: PAGE_SIZE, ...range });
    if (state.query) params.set("query", state.query);
    if (live.on && live.query !== state.query) liveRestart();
    loadStats(range);
    runSearch(`/api/tracker/messages/?${params}`, false);
  }

  function startSearch(event) {
    if (event) event.preventDefault();
    if (readForm()) run();
  }

  /** Download every message matching the query and range as CSV (the export API, no cap). */
  async function exportCurrent() {
    const params = new URLSearchParams({ format: "csv", ...currentRange() });
    if (state.query) params.set("query", state.query);
    el.exportButton.disabled = true;
    try {
      const response = await fetch(`/api/tracker/messages/export/?${params}`, {
        headers: { Authorization: `Bearer ${session.access}` },
        credentials: "omit",
        cache: "no-store",
      });
      if (!response.ok) throw new ApiError(`The export answered ${response.status}.`);
      const blob = await response.blob();
      const named = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = named ? named[1] : "messages.csv";
      document.body.append(link);
      link.click();
      link.remove();
      // The browser has the file once the click is handled; the blob's memory can go later.
      setTimeout(() => URL.revokeObjectURL(link.href), 60000);
    } catch (error) {
      showFailure(el.searchError, error);
    } finally {
      el.exportButton.disabled = false;
    }
  }

  function loadMore() {
    if (nextPage && !el.more.disabled) runSearch(sameOriginPath(nextPage), true);
  }

  // Infinite scroll: the More button is watched, and fetches the next page once it shows.
  let moreInView = false;
  if ("IntersectionObserver" in window) {
    const observer = new IntersectionObserver((entries) => {
      moreInView = entries.some((entry) => entry.isIntersecting);
      if (moreInView) loadMore();
    }, { rootMargin: "0px 0px 200px 0px" });
    observer.observe(el.more);
  }

  // --- Live ------------------------------------------------------------------------------
  // EventSource cannot send the bearer token, so each connection first buys a single-use
  // ticket. That also means the browser's own reconnect (same URL, spent ticket) cannot work:
  // on any error the page closes the source and reconnects itself, with a new ticket and the
  // position it got to, so that nothing is missed and nothing comes twice.

  const LIVE_RETRY_MAX_MS = 15000;
  const live = {
    on: false, source: null, lastId: null, timer: null, failures: 0, generation: 0,
    sinceSearch: [], shown: 0, countText: "", query: "",
  };

  function setLiveState(text) {
    el.liveState.textContent = text;
    el.liveState.hidden = !text;
    el.liveState.dataset.state = text.replace(" ", "-");
  }

  function liveClose() {
    live.generation += 1; // a connect still waiting for its ticket gives up
    clearTimeout(live.timer);
    if (live.source) live.source.close();
    live.source = null;
  }

  function liveStart() {
    live.on = true;
    live.lastId = null;
    live.failures = 0;
    el.liveToggle.setAttribute("aria-pressed", "true");
    liveConnect();
  }

  function liveStop() {
    live.on = false;
    liveClose();
    el.liveToggle.setAttribute("aria-pressed", "false");
    setLiveState("");
  }

  function liveRestart() {
    live.lastId = null;
    liveConnect();
  }

  function liveRetry() {
    if (!live.on) return;
    live.failures += 1;
    setLiveState("reconnecting");
    const delay = Math.min(LIVE_RETRY_MAX_MS, 1000 * 2 ** Math.min(live.failures - 1, 4));
    live.timer = setTimeout(liveConnect, delay);
  }

  /** Show a message that just arrived, on top, once (a search may have shown it already). */
  function liveShow(message) {
    live.sinceSearch.push(message);
    if (el.resultsBody.querySelector(`tr[data-id="${CSS.escape(message.message_id)}"]`)) return;
    addRow(message, 0).classList.add("row-live");
    el.results.hidden = false;
    live.shown += 1;
    const added = `${live.shown.toLocaleString()} new live`;
    el.count.textContent = live.countText ? `${live.countText} · ${added}` : added;
  }

  function liveReplay() {
    for (const message of live.sinceSearch.splice(0)) liveShow(message);
  }

  async function liveConnect() {
    liveClose();
    if (!live.on) return;
    const mine = live.generation;
    // The tail follows the same query as the table (the range is "from now on").
    live.query = state.query;
    setLiveState(live.failures ? "reconnecting" : "catching up");
    let ticket;
    try {
      const filters = live.query ? { query: live.query } : {};
      ticket = (await api("/api/tracker/messages/tail/ticket/", { method: "POST", body: filters }))
        .ticket;
    } catch (error) {
      if (error instanceof SessionEnded) liveStop();
      else if (error instanceof ApiError && error.data && error.data.query) {
        liveStop(); // a refused query will not get better by retrying; the bar shows why
        showQueryError(error);
      } else liveRetry();
      return;
    }
    if (!live.on || mine !== live.generation) return; // stopped, or restarted meanwhile
    const params = new URLSearchParams({ ticket });
    if (live.lastId) params.set("last_event_id", live.lastId);
    const source = new EventSource(`/api/tracker/messages/tail/?${params}`);
    live.source = source;
    const moved = (event) => { live.lastId = event.lastEventId || live.lastId; };
    source.addEventListener("open", () => setLiveState("catching up"));
    source.addEventListener("message", (event) => {
      moved(event);
      liveShow(JSON.parse(event.data));
    });
    source.addEventListener("live", (event) => {
      moved(event);
      live.failures = 0;
      setLiveState("live");
    });
    source.addEventListener("position", moved);
    source.addEventListener("reset", (event) => {
      // Messages were missed beyond the tail's window: search has them all.
      moved(event);
      run({ push: false });
    });
    source.addEventListener("error", () => {
      if (live.source !== source) return;
      liveClose();
      liveRetry();
    });
  }

  function toggleLive() {
    if (live.on) liveStop();
    else liveStart();
  }

  // --- Wiring ----------------------------------------------------------------------------

  let resizeTimer = null;
  function redrawSoon() {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      if (lastStats && !el.dashboard.hidden) drawChart(lastStats);
    }, 150);
  }

  function onKey(event) {
    // "/" jumps to the query bar, as in most log viewers, unless typing somewhere already.
    const typing = event.target.closest("input, textarea, select, [contenteditable]");
    if (event.key === "/" && !typing && !el.dashboard.hidden) {
      event.preventDefault();
      el.q.focus();
      el.q.select();
    }
  }

  el.loginForm.addEventListener("submit", logIn);
  el.logout.addEventListener("click", logOut);
  el.searchForm.addEventListener("submit", startSearch);
  el.range.addEventListener("change", () => {
    showCustomRange();
    if (el.range.value === "custom") {
      // Start from the range shown so far, ready to narrow.
      const { from, to } = currentRange();
      if (!el.from.value) el.from.value = isoToLocal(from);
      if (!el.to.value) el.to.value = isoToLocal(to);
      el.from.focus();
    } else {
      startSearch();
    }
  });
  el.split.addEventListener("change", startSearch);
  el.refresh.addEventListener("click", () => startSearch());
  el.q.addEventListener("input", () => el.q.removeAttribute("aria-invalid"));
  el.resultsBody.addEventListener("click", onResultsClick);
  el.legend.addEventListener("click", onLegendClick);
  el.more.addEventListener("click", loadMore);
  el.exportButton.addEventListener("click", exportCurrent);
  el.liveToggle.addEventListener("click", toggleLive);
  document.addEventListener("keydown", onKey);
  window.addEventListener("resize", redrawSoon);
  window.addEventListener("popstate", () => {
    readUrl();
    if (session.access) showView();
  });
  el.navExplorer.addEventListener("click", (event) => navigate(event, "explorer"));
  el.navAlerts.addEventListener("click", (event) => navigate(event, "alerts"));
  el.alertCreate.addEventListener("click", () => alerts.openDialog(state.query, el.alertCreate));
  const alerts = window.loggerAlerts({
    api, showMessage, showFailure, formatTime, openQuery, expandableRow,
  });
  readUrl();
  showLogin();
})();
