/* Python Logger dashboard: log in, draw the stats as stacked bars, search the messages, and
 * follow new ones live (server-sent events from the live tail).
 *
 * The tokens live only in the `session` object below, never in web storage or a cookie, so
 * closing or reloading the tab logs out. Every piece of data reaches the page through
 * textContent or an SVG attribute, never as parsed HTML.
 */
(() => {
  "use strict";

  // Bottom of the stack first; the server page lists them, so they are named in one place.
  const CATEGORIES = document.getElementById("chart").dataset.categories.split(" ");
  const PAGE_SIZE = 25;
  const HOUR_MS = 3600 * 1000;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const CHART = { height: 300, top: 14, right: 12, bottom: 30, left: 48, labelWidth: 84 };

  const session = { access: null, refresh: null, username: null };
  // Bumped by every new request of a kind, so a slow older answer never overwrites a newer one.
  const seq = { stats: 0, search: 0 };
  let lastStats = null;
  let nextPage = null;
  let refreshing = null;

  const $ = (id) => document.getElementById(id);
  const el = {
    login: $("login"), loginForm: $("login-form"), username: $("username"),
    password: $("password"), loginMessage: $("login-message"), loginSubmit: $("login-submit"),
    dashboard: $("dashboard"), session: $("session"), whoami: $("whoami"), logout: $("logout"),
    statsPanel: $("stats-panel"), statsForm: $("stats-form"), range: $("range"),
    interval: $("interval"), tz: $("tz"), statsError: $("stats-error"),
    chartWrap: $("chart-wrap"), chart: $("chart"), caption: $("chart-caption"),
    searchPanel: $("search-panel"), searchForm: $("search-form"), q: $("q"),
    searchError: $("search-error"), count: $("search-count"), results: $("results"),
    resultsBody: $("results-body"), more: $("more"),
    liveToggle: $("live-toggle"), liveState: $("live-state"), exportButton: $("export"),
  };

  // --- HTTP ------------------------------------------------------------------------------

  /** An answer other than 2xx, carrying the text to show (the JSON `detail`, or field errors). */
  class ApiError extends Error {}

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
    if (!answer.ok) throw new ApiError(describeError(answer.data, answer.status));
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
    seq.stats += 1;
    seq.search += 1;
    el.dashboard.hidden = true;
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
    el.dashboard.hidden = false;
    showMessage(el.statsError, "");
    showMessage(el.searchError, "");
    loadStats();
    startSearch();
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

  // --- Stats -----------------------------------------------------------------------------

  function svg(name, attributes = {}, parent = null) {
    const node = document.createElementNS(SVG_NS, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
    if (parent) parent.appendChild(node);
    return node;
  }

  /** Round axis steps (1, 2 or 5 times a power of ten) from zero to at least `max`. */
  function niceTicks(max) {
    if (max <= 0) return [0, 1];
    const raw = max / 4;
    const magnitude = 10 ** Math.floor(Math.log10(raw));
    const step = Math.max(1, [1, 2, 5, 10].map((f) => f * magnitude).find((s) => s >= raw));
    const ticks = [];
    for (let tick = 0; tick < max + step; tick += step) ticks.push(tick);
    return ticks;
  }

  /** A short label for a bucket start; `date` is already in the chosen zone, so no conversion. */
  function bucketLabel(date, interval) {
    const [year, month, day] = date.slice(0, 10).split("-").map(Number);
    const monthName = MONTHS[month - 1];
    if (interval === "month") return `${monthName} ${year}`;
    if (interval === "hour") return `${monthName} ${day}, ${date.slice(11, 16)}`;
    return `${monthName} ${day}`;
  }

  function bucketTitle(bucket, interval) {
    const when = bucketLabel(bucket.date, interval);
    const prefix = interval === "week" ? `Week of ${when}` : when;
    const parts = CATEGORIES.map((category) => `${category} ${bucket[category].toLocaleString()}`);
    return `${prefix}: ${bucket.total.toLocaleString()} messages (${parts.join(", ")})`;
  }

  function drawChart(stats) {
    const chart = el.chart;
    chart.replaceChildren();
    const width = Math.max(320, Math.floor(el.chartWrap.clientWidth));
    const { height, top, right, bottom, left, labelWidth } = CHART;
    chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const plotWidth = width - left - right;
    const plotHeight = height - top - bottom;
    const baseline = top + plotHeight;
    const buckets = stats.buckets;
    const ticks = niceTicks(buckets.reduce((max, bucket) => Math.max(max, bucket.total), 0));
    const scale = plotHeight / ticks[ticks.length - 1];

    for (const tick of ticks) {
      const y = baseline - tick * scale;
      svg("line", { class: "grid", x1: left, x2: width - right, y1: y, y2: y }, chart);
      const label = svg("text", { x: left - 8, y: y + 4, "text-anchor": "end" }, chart);
      label.textContent = tick.toLocaleString();
    }

    const slot = plotWidth / Math.max(buckets.length, 1);
    // A gap between bars while they are wide enough to afford one.
    const barWidth = slot >= 6 ? Math.min(slot * 0.72, 56) : slot;
    const labelsFit = Math.max(1, Math.floor(plotWidth / labelWidth));
    const labelEvery = Math.max(1, Math.ceil(buckets.length / labelsFit));
    buckets.forEach((bucket, index) => {
      const group = svg("g", { class: "bucket", "data-date": bucket.date }, chart);
      svg("title", {}, group).textContent = bucketTitle(bucket, stats.interval);
      const hit = { class: "hit", x: left + index * slot, y: top, width: slot, height: plotHeight };
      svg("rect", hit, group);
      const x = left + index * slot + (slot - barWidth) / 2;
      let y = baseline;
      for (const category of CATEGORIES) {
        const value = bucket[category];
        if (!value) continue;
        const barHeight = value * scale;
        y -= barHeight;
        svg("rect", {
          class: `bar bar-${category.toLowerCase()}`, "data-category": category, "data-value": value,
          x: x.toFixed(2), y: y.toFixed(2), width: barWidth.toFixed(2), height: barHeight.toFixed(2),
        }, group);
      }
      if (index % labelEvery === 0) {
        // Centred under its bar, but pulled in at the right edge so it is never cut off.
        const labelX = Math.min(left + (index + 0.5) * slot, width - labelWidth / 2);
        const label = svg("text", { x: labelX, y: baseline + 18, "text-anchor": "middle" }, chart);
        label.textContent = bucketLabel(bucket.date, stats.interval);
      }
    });
    svg("line", { class: "axis", x1: left, x2: width - right, y1: baseline, y2: baseline }, chart);

    if (stats.totals.total === 0) {
      const middle = { x: left + plotWidth / 2, y: top + plotHeight / 2, "text-anchor": "middle" };
      const empty = svg("text", { class: "empty", ...middle }, chart);
      empty.textContent = "No messages in this range yet.";
    }
  }

  function formatTime(iso, options = { dateStyle: "medium", timeStyle: "short" }) {
    try {
      const format = new Intl.DateTimeFormat(undefined, { ...options, timeZone: el.tz.value });
      return format.format(new Date(iso));
    } catch {
      return iso; // a zone this browser does not know
    }
  }

  function showStats(stats) {
    lastStats = stats;
    const { totals } = stats;
    $("total-total").textContent = totals.total.toLocaleString();
    for (const category of CATEGORIES) {
      $(`total-${category}`).textContent = totals[category].toLocaleString();
      const share = totals.total ? `${((100 * totals[category]) / totals.total).toFixed(1)} %` : "";
      $(`share-${category}`).textContent = share;
    }
    const span = `${formatTime(stats.from)} – ${formatTime(stats.to)}`;
    el.caption.textContent = `${span} · by ${stats.interval} · ${stats.tz}`;
    drawChart(stats);
  }

  async function loadStats() {
    const mine = ++seq.stats;
    const to = new Date();
    const from = new Date(to.getTime() - Number(el.range.value) * HOUR_MS);
    const query = new URLSearchParams({
      from: from.toISOString(), to: to.toISOString(), interval: el.interval.value, tz: el.tz.value,
    });
    el.statsPanel.setAttribute("aria-busy", "true");
    try {
      const stats = await api(`/api/tracker/stats/?${query}`);
      if (mine !== seq.stats) return;
      showMessage(el.statsError, "");
      showStats(stats);
    } catch (error) {
      if (mine === seq.stats) showFailure(el.statsError, error);
    } finally {
      if (mine === seq.stats) el.statsPanel.removeAttribute("aria-busy");
    }
  }

  // --- Search ----------------------------------------------------------------------------

  function cell(row, className, text) {
    const td = row.insertCell();
    td.className = className;
    td.textContent = text;
    return td;
  }

  /** Fill a table row with one message; `at` is where it goes (-1: the end, 0: the top). */
  function addRow(message, at = -1) {
    const row = el.resultsBody.insertRow(at);
    row.dataset.id = message.message_id;
    const created = formatTime(message.created_time, { dateStyle: "medium", timeStyle: "medium" });
    cell(row, "when", created).title = message.created_time;
    const badge = document.createElement("span");
    badge.className = `badge badge-${String(message.category).toLowerCase()}`;
    badge.textContent = message.category;
    cell(row, "category", "").appendChild(badge);
    cell(row, "text", message.user_message);
    cell(row, "num", `#${message.request_count}`);
    cell(row, "id", String(message.message_id).slice(0, 8)).title = message.message_id;
    return row;
  }

  function addResults(results) {
    for (const message of results) addRow(message);
  }

  function showPage(page, query, append) {
    if (!append) {
      el.resultsBody.replaceChildren();
      live.shown = 0;
    }
    addResults(page.results);
    const shown = el.resultsBody.rows.length;
    const noun = page.count === 1 ? "message" : "messages";
    const total = `${page.count.toLocaleString()} ${noun}`;
    if (page.count) {
      const what = query ? `${total} match “${query}”` : `${total}, newest first`;
      el.count.textContent = `${what} · showing ${shown.toLocaleString()}`;
      live.countText = el.count.textContent;
    } else {
      el.count.textContent = query ? `No message matches “${query}”.` : "No messages yet.";
      live.countText = "";
    }
    // Messages that arrived live while this page loaded stay on top of it.
    if (!append) liveReplay();
    el.results.hidden = el.resultsBody.rows.length === 0;
    nextPage = page.next;
    el.more.hidden = !nextPage;
  }

  /** Path and query of a `next` link: the token must only ever go back to this origin. */
  function sameOriginPath(link) {
    const url = new URL(link, window.location.href);
    return `${url.pathname}${url.search}`;
  }

  async function runSearch(path, query, append) {
    const mine = ++seq.search;
    // What arrives live while a new first page loads is shown again on top of it.
    if (!append) live.sinceSearch = [];
    el.searchPanel.setAttribute("aria-busy", "true");
    el.more.disabled = true;
    try {
      const page = await api(path);
      if (mine !== seq.search) return;
      showMessage(el.searchError, "");
      showPage(page, query, append);
    } catch (error) {
      if (mine === seq.search) showFailure(el.searchError, error);
    } finally {
      if (mine === seq.search) {
        el.searchPanel.removeAttribute("aria-busy");
        el.more.disabled = false;
      }
    }
  }

  let currentQuery = "";

  function startSearch(event) {
    if (event) event.preventDefault();
    const changed = currentQuery !== el.q.value;
    currentQuery = el.q.value;
    // Live follows the search's text: a new text is a new stream, from now on.
    if (changed && live.on) liveRestart();
    const query = new URLSearchParams({ page_size: PAGE_SIZE });
    if (currentQuery) query.set("q", currentQuery);
    runSearch(`/api/tracker/messages/?${query}`, currentQuery, false);
  }

  /** Download every message matching the current search as CSV (the export API, no cap). */
  async function exportCurrent() {
    const query = new URLSearchParams({ format: "csv" });
    if (currentQuery) query.set("q", currentQuery);
    el.exportButton.disabled = true;
    try {
      const response = await fetch(`/api/tracker/messages/export/?${query}`, {
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
    if (nextPage) runSearch(sameOriginPath(nextPage), currentQuery, true);
  }


  // --- Live ------------------------------------------------------------------------------
  // EventSource cannot send the bearer token, so each connection first buys a single-use
  // ticket. That also means the browser's own reconnect (same URL, spent ticket) cannot work:
  // on any error the page closes the source and reconnects itself, with a new ticket and the
  // position it got to, so that nothing is missed and nothing comes twice.

  const LIVE_RETRY_MAX_MS = 15000;
  const live = {
    on: false, source: null, lastId: null, timer: null, failures: 0, generation: 0,
    sinceSearch: [], shown: 0, countText: "",
  };

  function setLiveState(state) {
    el.liveState.textContent = state;
    el.liveState.hidden = !state;
    el.liveState.dataset.state = state.replace(" ", "-");
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
    setLiveState(live.failures ? "reconnecting" : "catching up");
    let ticket;
    try {
      const filters = currentQuery ? { q: currentQuery } : {};
      ticket = (await api("/api/tracker/messages/tail/ticket/", { method: "POST", body: filters }))
        .ticket;
    } catch (error) {
      if (error instanceof SessionEnded) liveStop();
      else liveRetry();
      return;
    }
    if (!live.on || mine !== live.generation) return; // stopped, or restarted meanwhile
    const query = new URLSearchParams({ ticket });
    if (live.lastId) query.set("last_event_id", live.lastId);
    const source = new EventSource(`/api/tracker/messages/tail/?${query}`);
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
      startSearch();
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

  function setUpZones() {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && zone !== "UTC") {
      const option = new Option(zone, zone, true, true);
      el.tz.prepend(option);
    }
  }

  let resizeTimer = null;
  function redrawSoon() {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      if (lastStats && !el.dashboard.hidden) drawChart(lastStats);
    }, 150);
  }

  setUpZones();
  el.loginForm.addEventListener("submit", logIn);
  el.logout.addEventListener("click", logOut);
  el.statsForm.addEventListener("submit", (event) => { event.preventDefault(); loadStats(); });
  el.range.addEventListener("change", () => {
    // Each range comes with the interval that gives it a readable number of bars.
    el.interval.value = el.range.selectedOptions[0].dataset.interval;
    loadStats();
  });
  el.interval.addEventListener("change", loadStats);
  el.tz.addEventListener("change", () => { loadStats(); startSearch(); });
  el.searchForm.addEventListener("submit", startSearch);
  el.more.addEventListener("click", loadMore);
  el.exportButton.addEventListener("click", exportCurrent);
  el.liveToggle.addEventListener("click", toggleLive);
  window.addEventListener("resize", redrawSoon);
  showLogin();
})();
