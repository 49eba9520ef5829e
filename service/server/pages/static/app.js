// The ntkdyn pages: every number comes from the JSON API with the token kept in this browser.
"use strict";

const body = document.body;
const root = body.dataset.root;
const TOKEN = "ntkdyn.token";
const FINISHED = new Set(["succeeded", "failed", "cancelled"]);

function token() {
  return window.localStorage.getItem(TOKEN);
}

function headers() {
  const value = token();
  return value ? { Authorization: `Bearer ${value}` } : {};
}

function problem(text) {
  const box = document.getElementById("problem");
  box.textContent = text;
  box.hidden = !text;
}

function element(tag, text, className) {
  const made = document.createElement(tag);
  if (text !== undefined && text !== null) made.textContent = String(text);
  if (className) made.className = className;
  return made;
}

function toLogin() {
  const next = encodeURIComponent(window.location.pathname + window.location.search);
  window.location.assign(`${root}/ui/login?next=${next}`);
}

// One request to the API; the response when it is 2xx, else the detail is shown and it throws.
async function api(path, options = {}) {
  const response = await fetch(root + path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  if (response.status === 401) {
    toLogin();
    throw new Error("not signed in");
  }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const answer = await response.json();
      detail = typeof answer.detail === "string" ? answer.detail
        : Array.isArray(answer.detail) ? answer.detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ")
        : (answer.detail && answer.detail.msg) || JSON.stringify(answer.detail);
    } catch (_) { /* not JSON */ }
    problem(`${response.status}: ${detail}`);
    throw new Error(detail);
  }
  return response;
}

async function json(path) {
  return (await api(path)).json();
}

function when(moment) {
  return moment ? new Date(moment).toLocaleString() : "-";
}

function percent(fraction) {
  return `${Math.round(100 * fraction)}%`;
}

function badge(status) {
  return element("span", status, `status ${status}`);
}

async function signedIn() {
  const me = await json("/v1/me");
  document.getElementById("who").textContent = `${me.name} (${me.role})`;
  const out = document.getElementById("sign-out");
  out.hidden = !token();
  out.addEventListener("click", () => {
    window.localStorage.removeItem(TOKEN);
    toLogin();
  });
  return me;
}

// The job list: filters and paging live in the address, so a view can be linked.
async function jobsPage() {
  await signedIn();
  const query = new URLSearchParams(window.location.search);
  const form = document.getElementById("filters");
  for (const name of ["kind", "status", "owner", "limit"]) {
    if (query.get(name)) form.elements[name].value = query.get(name);
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = new URLSearchParams();
    for (const name of ["kind", "status", "owner", "limit"]) {
      if (form.elements[name].value) chosen.set(name, form.elements[name].value);
    }
    window.location.search = chosen.toString();
  });
  const asked = new URLSearchParams();
  for (const name of ["kind", "status", "owner", "limit", "cursor"]) {
    if (query.get(name)) asked.set(name, query.get(name));
  }
  const page = await json(`/v1/jobs?${asked}`);
  const rows = document.querySelector("#jobs tbody");
  for (const job of page.items) {
    const row = element("tr");
    const link = element("a", job.id.slice(0, 12));
    link.href = `${root}/ui/jobs/${encodeURIComponent(job.id)}`;
    link.title = job.id;
    const cells = [link, job.kind, badge(job.status), percent(job.progress), job.owner, when(job.created_at), job.message];
    for (const value of cells) {
      const cell = element("td");
      if (value instanceof Node) cell.append(value); else cell.textContent = value;
      row.append(cell);
    }
    rows.append(row);
  }
  if (!page.items.length) {
    const row = element("tr");
    const cell = element("td", "no jobs", "empty");
    cell.colSpan = 7;
    row.append(cell);
    rows.append(row);
  }
  const older = document.getElementById("older");
  older.hidden = !page.next_cursor;
  older.addEventListener("click", () => {
    query.set("cursor", page.next_cursor);
    window.location.search = query.toString();
  });
  const newer = document.getElementById("newer");
  newer.hidden = !query.get("cursor");
  newer.addEventListener("click", () => window.history.back());
}

function showJob(job) {
  const facts = document.getElementById("facts");
  facts.replaceChildren();
  const shown = [
    ["kind", job.kind], ["status", badge(job.status)], ["owner", job.owner], ["visibility", job.visibility],
    ["attempts", job.attempts], ["created", when(job.created_at)], ["started", when(job.started_at)],
    ["finished", when(job.finished_at)],
  ];
  if (job.parent_id) {
    const up = element("a", job.parent_id.slice(0, 12));
    up.href = `${root}/ui/jobs/${job.parent_id}`;
    shown.push(["sweep", up]);
  }
  for (const [name, value] of shown) {
    const term = element("dt", name);
    const description = element("dd");
    if (value instanceof Node) description.append(value); else description.textContent = value;
    facts.append(term, description);
  }
  showProgress(job.status, job.progress, job.message);
  const error = document.getElementById("error");
  error.hidden = !job.error;
  error.textContent = job.error || "";
}

function showProgress(status, progress, message) {
  const bar = document.getElementById("bar");
  bar.style.width = percent(progress);
  bar.className = `bar ${status}`;
  document.getElementById("message").textContent = `${percent(progress)} · ${message}`;
}

// Server-Sent Events read with fetch, so the token goes in a header; resumes after a break.
async function follow(jobId) {
  let last = null;
  for (let tries = 0; tries < 20; tries += 1) {
    const extra = last ? { "Last-Event-ID": last } : {};
    try {
      const response = await api(`/v1/jobs/${jobId}/events`, { headers: extra });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const fields = {};
          for (const line of block.split("\n")) {
            const colon = line.indexOf(":");
            if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1).trim();
          }
          if (!fields.data) continue;
          last = fields.id || last;
          const data = JSON.parse(fields.data);
          showProgress(data.status, data.progress, data.message);
          if (fields.event === "status" && FINISHED.has(data.status)) return;
        }
      }
    } catch (error) {
      if (error.message === "not signed in") return;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function drawFigure(shown) {
  const box = element("figure", null, "figure");
  box.dataset.name = shown.name;
  const plot = element("div", null, "plot");
  box.append(plot, element("figcaption", shown.title));
  document.getElementById("figures").append(box);
  window.Plotly.newPlot(plot, shown.figure.data, shown.figure.layout, { displaylogo: false, responsive: true });
}

// A table cell: a child job's id links to its page; a fraction shows six digits, all in its title.
function cell(column, value) {
  const shown = element("td");
  if (column === "job" && typeof value === "string") {
    const link = element("a", value.slice(0, 12));
    link.href = `${root}/ui/jobs/${encodeURIComponent(value)}`;
    link.title = value;
    shown.append(link);
  } else if (typeof value === "number" && !Number.isInteger(value)) {
    shown.textContent = value.toPrecision(6);
    shown.title = String(value);
  } else {
    shown.textContent = value === null ? "" : String(value);
  }
  return shown;
}

function drawTable(shown) {
  const box = element("div", null, "table");
  box.append(element("h2", shown.title));
  const table = element("table", null, "data");
  table.dataset.name = shown.name;
  const head = element("tr");
  for (const name of shown.header) head.append(element("th", name));
  table.append(element("thead"));
  table.tHead.append(head);
  const rows = element("tbody");
  for (const row of shown.rows) {
    const line = element("tr");
    row.forEach((value, column) => line.append(cell(shown.header[column], value)));
    rows.append(line);
  }
  table.append(rows);
  box.append(table);
  document.getElementById("tables").append(box);
}

async function download(jobId, format) {
  const response = await api(`/v1/jobs/${jobId}/result?format=${format}`);
  const link = element("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = format === "json" ? `${jobId}.json` : (response.headers.get("content-disposition") || "")
    .replace(/.*filename="([^"]+)".*/, "$1") || `${jobId}.${format}`;
  link.click();
  URL.revokeObjectURL(link.href);
}

async function jobPage() {
  await signedIn();
  const jobId = body.dataset.job;
  let job = await json(`/v1/jobs/${jobId}`);
  showJob(job);
  if (!FINISHED.has(job.status)) {
    await follow(jobId);
    job = await json(`/v1/jobs/${jobId}`);
    showJob(job);
  }
  if (job.status !== "succeeded") return;
  const shown = await json(`/v1/jobs/${jobId}/figures`);
  shown.figures.forEach(drawFigure);
  shown.tables.forEach(drawTable);
  const downloads = document.getElementById("downloads");
  downloads.hidden = false;
  for (const button of downloads.querySelectorAll("button")) {
    button.addEventListener("click", () => download(jobId, button.dataset.format));
  }
  body.dataset.drawn = "true";
}

function loginPage() {
  const form = document.getElementById("login");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    window.localStorage.setItem(TOKEN, form.elements.token.value.trim());
    const answer = await fetch(`${root}/v1/me`, { headers: headers() });
    if (!answer.ok) {
      window.localStorage.removeItem(TOKEN);
      problem("that token was not accepted");
      return;
    }
    const next = new URLSearchParams(window.location.search).get("next") || "";
    window.location.assign(next.startsWith("/") && !next.startsWith("//") ? next : `${root}/ui`);
  });
}

const PAGES = { jobs: jobsPage, job: jobPage, login: loginPage };
window.addEventListener("DOMContentLoaded", () => {
  Promise.resolve(PAGES[body.dataset.page]()).then(
    () => { body.dataset.ready = "true"; },
    (error) => { body.dataset.ready = "error"; console.warn(error.message); },
  );
});
