/* Python Logger explorer, the alerts part: the Alerts page (each rule with its state, last
 * firing and history) and the "Alert on this query" dialog that makes a rule of a search.
 *
 * dashboard.js owns the session and calls `window.loggerAlerts(deps)` once with what this
 * part needs (its authenticated `api`, message helpers, and how to open a query in the
 * explorer); nothing else is shared. Data reaches the page through textContent only.
 */
(() => {
  "use strict";

  const HISTORY_LIMIT = 20;

  window.loggerAlerts = (deps) => {
    const { api, showMessage, showFailure, formatTime, openQuery, expandableRow } = deps;
    const $ = (id) => document.getElementById(id);
    const el = {
      panel: $("rules-panel"), error: $("rules-error"), empty: $("rules-empty"),
      table: $("rules"), body: $("rules-body"), refresh: $("rules-refresh"),
      dialog: $("alert-dialog"), form: $("alert-form"), query: $("alert-query"),
      name: $("alert-name"), countFields: $("alert-count-fields"), below: $("alert-below"),
      threshold: $("alert-threshold"), window: $("alert-window"), channels: $("alert-channels"),
      noChannels: $("alert-no-channels"), formError: $("alert-error"), cancel: $("alert-cancel"),
      submit: $("alert-submit"), created: $("alert-created"),
    };
    let seq = 0;
    let dialogQuery = "";
    let opener = null;

    function text(tag, value, className = "") {
      const node = document.createElement(tag);
      if (className) node.className = className;
      node.textContent = value;
      return node;
    }

    function conditionText(condition) {
      if (condition.type === "any") return "any match";
      const sign = condition.below ? "≤" : "≥";
      return `${sign} ${condition.threshold} in ${condition.window_s} s`;
    }

    function stateBadge(rule) {
      const muted = rule.muted_until && new Date(rule.muted_until) > new Date();
      const badge = text("span", rule.state, `badge state-${rule.state}`);
      const cell = document.createElement("span");
      cell.append(badge);
      if (muted) cell.append(" ", text("span", `muted until ${formatTime(rule.muted_until)}`, "muted"));
      return cell;
    }

    function cell(row, value, className = "") {
      const td = row.insertCell();
      if (className) td.className = className;
      if (value instanceof Node) td.append(value);
      else td.textContent = value;
      return td;
    }

    function ruleRow(rule, channelNames) {
      const row = expandableRow(el.body, rule.id, `Show the history of ${rule.name}`);
      cell(row, rule.name, "name");
      cell(row, stateBadge(rule), "state");
      cell(row, conditionText(rule.condition));
      // The query opens in the explorer: what the rule watches, as a search.
      const query = document.createElement("button");
      query.type = "button";
      query.className = "field-value rule-query";
      query.dataset.open = rule.query;
      query.textContent = rule.query || "(every message)";
      query.title = "Open this query in the explorer";
      cell(row, query, "query");
      cell(row, rule.last_fired ? formatTime(rule.last_fired) : "never", "when");
      const names = rule.channels.map((id) => channelNames.get(id) || id);
      cell(row, names.join(", ") || "none");
    }

    async function showRules() {
      const mine = ++seq;
      el.panel.setAttribute("aria-busy", "true");
      try {
        const [rules, channels] = await Promise.all([
          api("/api/alerts/rules/"), api("/api/alerts/channels/"),
        ]);
        if (mine !== seq) return;
        showMessage(el.error, "");
        const names = new Map(channels.map((channel) => [channel.id, channel.name]));
        el.body.replaceChildren();
        for (const rule of rules) ruleRow(rule, names);
        el.table.hidden = rules.length === 0;
        el.empty.hidden = rules.length !== 0;
      } catch (error) {
        if (mine === seq) showFailure(el.error, error);
      } finally {
        if (mine === seq) el.panel.removeAttribute("aria-busy");
      }
    }

    function eventText(event) {
      if (event.kind === "state") {
        const count = event.count === null ? "" : ` (${event.count} matching)`;
        return `became ${event.state}${count}${event.summary ? `: ${event.summary}` : ""}`;
      }
      const attempt = event.attempt ? ` attempt ${event.attempt}` : "";
      const status = event.status_code ? ` HTTP ${event.status_code}` : "";
      const why = event.error ? `: ${event.error}` : "";
      return `delivery to ${event.channel_name}${attempt} ${event.outcome}${status}${why}`;
    }

    async function toggleHistory(button) {
      const row = button.closest("tr");
      const next = row.nextElementSibling;
      if (button.getAttribute("aria-expanded") === "true") {
        if (next && next.classList.contains("detail")) next.remove();
        button.setAttribute("aria-expanded", "false");
        return;
      }
      const detail = document.createElement("tr");
      detail.className = "detail";
      detail.id = `history-${row.dataset.id}`;
      const td = detail.insertCell();
      td.colSpan = row.cells.length;
      td.append(text("p", "Loading the history…", "muted"));
      row.after(detail);
      button.setAttribute("aria-controls", detail.id);
      button.setAttribute("aria-expanded", "true");
      try {
        const events = await api(
          `/api/alerts/rules/${encodeURIComponent(row.dataset.id)}/events/?limit=${HISTORY_LIMIT}`,
        );
        const list = document.createElement("ol");
        list.className = "history";
        list.setAttribute("aria-label", "History, newest first");
        for (const event of events) {
          const item = document.createElement("li");
          item.dataset.kind = event.kind;
          item.append(text("time", formatTime(event.at), "when"), " ", eventText(event));
          list.append(item);
        }
        td.replaceChildren(events.length ? list : text("p", "No history yet.", "muted"));
      } catch (error) {
        const message = text("p", "", "message message-error");
        showFailure(message, error);
        td.replaceChildren(message);
      }
    }

    function onRulesClick(event) {
      const button = event.target.closest("button");
      if (!button) return;
      if (button.classList.contains("expand")) toggleHistory(button);
      else if (button.dataset.open !== undefined) openQuery(button.dataset.open);
    }

    // --- "Alert on this query" ---------------------------------------------------------

    function showCountFields() {
      el.countFields.hidden = el.form.elements.condition.value !== "count";
    }

    async function openDialog(query, returnFocus) {
      dialogQuery = query;
      opener = returnFocus;
      el.query.textContent = query || "(every message)";
      el.name.value = query ? `Query: ${query}`.slice(0, 100) : "Every message";
      showMessage(el.formError, "");
      showCountFields();
      el.channels.replaceChildren();
      el.noChannels.hidden = true;
      el.dialog.showModal();
      el.name.focus();
      el.name.select();
      try {
        const channels = await api("/api/alerts/channels/");
        for (const channel of channels) {
          const label = document.createElement("label");
          label.className = "inline";
          const box = document.createElement("input");
          box.type = "checkbox";
          box.name = "channel";
          box.value = channel.id;
          label.append(box, ` ${channel.name} (${channel.type}: ${channel.url || channel.to})`);
          el.channels.append(label);
        }
        el.noChannels.hidden = channels.length !== 0;
      } catch (error) {
        showFailure(el.formError, error);
      }
    }

    function closeDialog() {
      el.dialog.close();
      if (opener) opener.focus();
    }

    async function createRule(event) {
      event.preventDefault();
      const condition = { type: el.form.elements.condition.value };
      if (condition.type === "count") {
        condition.threshold = Number(el.threshold.value);
        condition.window_s = Number(el.window.value);
        condition.below = el.below.value === "true";
      }
      const channels = [...el.channels.querySelectorAll("input:checked")].map((box) => box.value);
      const body = { name: el.name.value.trim(), query: dialogQuery, condition, channels };
      el.submit.disabled = true;
      try {
        const rule = await api("/api/alerts/rules/", { method: "POST", body });
        closeDialog();
        showMessage(el.created, `Rule “${rule.name}” created: see it under Alerts.`);
      } catch (error) {
        // DRF's {field: [messages]} names the field; a refused query names its position.
        showFailure(el.formError, error);
      } finally {
        el.submit.disabled = false;
      }
    }

    el.refresh.addEventListener("click", showRules);
    el.body.addEventListener("click", onRulesClick);
    el.form.addEventListener("submit", createRule);
    el.form.addEventListener("change", showCountFields);
    el.cancel.addEventListener("click", closeDialog);
    // Escape closes the dialog by itself; the focus still goes back to where it came from.
    el.dialog.addEventListener("cancel", () => { if (opener) setTimeout(() => opener.focus()); });

    return { showRules, openDialog };
  };
})();
