// Progressive enhancement only: every page works without this file.
(function () {
  if (window.mailtrailConsole) return; // the list pages load this file a second time
  window.mailtrailConsole = true;

  function ready(fn) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fn);
    else fn();
  }

  ready(function () {
    // Wide windows show the filters unfolded (CSS does it where the browser knows
    // ::details-content; this covers the others).
    if (window.matchMedia("(min-width: 761px)").matches) {
      document.querySelectorAll("details.fold.wide-open").forEach(function (d) { d.open = true; });
    }

    // On a phone, the filter forms of the list pages fold behind one "Filters" control too
    // (the status page does it in its markup). A form with an error stays open.
    if (window.matchMedia("(max-width: 760px)").matches) {
      var label = document.body.getAttribute("data-filters-label") || "Filters";
      document.querySelectorAll("main > form.card.filters").forEach(function (form) {
        if (form.querySelector(".field-error")) return;
        var fold = document.createElement("details");
        fold.className = "card fold";
        var summary = document.createElement("summary");
        summary.textContent = label;
        var typed = Array.prototype.filter.call(
          form.querySelectorAll("input[type=text], input[type=date], input[type=search], select"),
          function (i) { return i.value; }
        ).map(function (i) { return i.value; });
        if (typed.length) {
          var active = document.createElement("span");
          active.className = "active-filters";
          active.textContent = typed.join(" · ");
          summary.appendChild(active);
        }
        form.parentNode.insertBefore(fold, form);
        fold.appendChild(summary);
        form.classList.remove("card");
        fold.appendChild(form);
      });
    }

    // Tabs that scroll sideways on a phone show the chosen one.
    var activeTab = document.querySelector(".tabs .tab.active");
    if (activeTab && activeTab.parentNode.scrollWidth > activeTab.parentNode.clientWidth) {
      activeTab.parentNode.scrollLeft = activeTab.offsetLeft - 16;
    }

    // "Select all" for the checkbox column of the list pages, and "Delete selected" only
    // once something is ticked.
    var all = document.getElementById("select-all");
    var boxes = document.querySelectorAll("input.row-check");
    var selected = document.getElementById("delete-selected");
    function sync() {
      if (!selected) return;
      var any = Array.prototype.some.call(boxes, function (b) { return b.checked; });
      selected.disabled = !any;
    }
    if (all) {
      all.addEventListener("change", function () {
        boxes.forEach(function (box) { box.checked = all.checked; });
        sync();
      });
    }
    boxes.forEach(function (box) { box.addEventListener("change", sync); });
    sync();

    // Destructive actions ask first: <form data-confirm="…">.
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        if (!window.confirm(form.getAttribute("data-confirm"))) e.preventDefault();
      });
    });

    // "Copy" next to a value to paste elsewhere (the webhook URL).
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var target = document.getElementById(button.getAttribute("data-copy"));
        if (!target || !navigator.clipboard) return;
        navigator.clipboard.writeText(target.textContent.trim()).then(function () {
          button.textContent = button.getAttribute("data-copied") || button.textContent;
        });
      });
    });
  });
})();
