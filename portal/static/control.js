// "Select all shown" on the remote operations page (a file: the CSP allows scripts from 'self' only).
const selectAll = document.getElementById("select-all");
if (selectAll) {
  selectAll.addEventListener("change", () => {
    document.querySelectorAll('#control-meters input[name="meters"]').forEach((box) => { box.checked = selectAll.checked; });
  });
}
