// The status board refreshes itself: every 10 s it fetches the same filters and page as JSON and redraws the rows,
// the counts and the totals in place. A file rather than inline code: the CSP allows scripts from 'self' only.
// Text is set with textContent only, so nothing from the server is ever parsed as HTML.
(() => {
  const table = document.getElementById("board");
  if (!table) return;
  const words = JSON.parse(table.dataset.labels);
  const every = Number(table.dataset.refreshMs) || 10000;
  const body = table.tBodies[0];
  const status = document.getElementById("board-updated");
  let timer = null;

  function cell(row, text, className) {
    const td = row.insertCell();
    td.textContent = text == null ? "" : text;
    if (className) td.className = className;
    return td;
  }

  function when(iso) {  // the page shows UTC as "YYYY-MM-DD HH:MM:SS"; so does the script
    return iso ? new Date(iso).toISOString().slice(0, 19).replace("T", " ") : "";
  }

  function drawRow(meter) {
    const row = document.createElement("tr");
    row.className = `board-${meter.state}`;
    row.dataset.meter = meter.meter_id;
    row.dataset.state = meter.state;
    cell(row, meter.building);
    cell(row, meter.floor);
    cell(row, meter.unit);
    const link = document.createElement("a");
    link.href = table.dataset.meterBase + encodeURIComponent(meter.meter_id);
    link.textContent = meter.serial;
    cell(row, "", "mono").appendChild(link);
    cell(row, meter.remaining, "num");
    cell(row, meter.relay ? words.relay[meter.relay] : "");
    cell(row, meter.mode ? words.mode[meter.mode] : "");
    cell(row, meter.alarms.map((kind) => words.alarm[kind] || kind).join(", "));
    cell(row, when(meter.read_at), "mono");
    cell(row, words.state[meter.state] || meter.state, "board-state");
    return row;
  }

  function draw(board) {
    body.replaceChildren(...board.rows.map(drawRow));
    document.getElementById("board-empty").hidden = board.rows.length > 0;
    for (const [state, count] of Object.entries(board.counts)) {
      const shown = document.querySelector(`[data-count="${state}"]`);
      if (shown) shown.textContent = String(count);
    }
    for (const [id, value] of [["board-matched", board.matched], ["board-total", board.total],
      ["board-page", board.page], ["board-pages", board.pages]]) {
      const shown = document.getElementById(id);
      if (shown) shown.textContent = String(value);
    }
  }

  async function refresh() {
    try {
      const response = await fetch(table.dataset.source + window.location.search,
        { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.status === 401) {
        status.textContent = `· ${words.script.expired}`;
        return;  // no more polling: only a reload can log in again
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      draw(await response.json());
      status.textContent = `· ${words.script.updated} ${new Date().toLocaleTimeString()}`;
      table.dataset.refreshed = String(Date.now());
    } catch (error) {
      status.textContent = `· ${words.script.failed}`;
    }
    schedule();
  }

  function schedule() {
    clearTimeout(timer);
    timer = document.hidden ? null : setTimeout(refresh, every);  // a hidden tab costs the servers nothing
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && timer === null) refresh();
  });
  schedule();
})();
