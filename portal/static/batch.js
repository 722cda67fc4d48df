// Live progress of a batch: polls its JSON every 1.5 s and updates each meter's status until all are settled.
const section = document.getElementById("batch");
const labels = {};  // status → the page's own (translated) word, learnt from the rows already shown
document.querySelectorAll("#batch-commands tr[data-command]").forEach((row) => {
  labels[row.className.replace("status-", "")] = row.querySelector(".status").textContent;
});

async function poll() {
  const response = await fetch(section.dataset.poll, { credentials: "same-origin" });
  if (!response.ok) return;
  const batch = await response.json();
  for (const command of batch.commands) {
    const row = document.querySelector(`tr[data-command="${command.command_id}"]`);
    if (!row) continue;
    row.className = `status-${command.status}`;
    row.querySelector(".status").textContent = labels[command.status] || command.status;
    row.querySelector(".detail").textContent = command.detail;
  }
  document.getElementById("batch-summary").textContent =
    Object.entries(batch.summary).map(([status, count]) => `${labels[status] || status}: ${count}`).join("  ");
  if (!batch.done) setTimeout(poll, 1500);
}
if (section) setTimeout(poll, 1000);
