// Progressive enhancement only: every page works without this file.
// "Select all" for the checkbox column of the list pages.
document.addEventListener("DOMContentLoaded", function () {
  var all = document.getElementById("select-all");
  if (!all) return;
  all.addEventListener("change", function () {
    document.querySelectorAll("input.row-check").forEach(function (box) { box.checked = all.checked; });
  });
});
