// Growbin console: refresh the parts of a page that change, without reloading it.
// Every page works without this script; it only keeps the figures current.
(function () {
  "use strict";

  function poll(region) {
    var url = region.getAttribute("data-poll");
    var every = parseInt(region.getAttribute("data-poll-every") || "5000", 10);
    var name = region.getAttribute("data-poll-name") || "";
    var status = document.querySelector('[data-poll-status="' + name + '"]');
    var toggle = document.querySelector('[data-poll-toggle="' + name + '"]');
    var paused = false;
    var stopped = false;
    var timer = null;

    function schedule() {
      if (!stopped) { timer = window.setTimeout(tick, every); }
    }

    function tick() {
      // leave the region alone while the keyboard is in it or the tab is hidden
      if (paused || document.hidden || region.contains(document.activeElement)) {
        schedule();
        return;
      }
      fetch(url, { credentials: "same-origin", headers: { "X-Console-Fragment": "1" } })
        .then(function (response) {
          if (response.status === 401) {
            window.location.assign("/console/sign-in?next=" + encodeURIComponent(location.pathname + location.search));
            stopped = true;
            return null;
          }
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          if (response.headers.get("X-Console-Poll") === "stop") { stopped = true; }
          return response.text();
        })
        .then(function (html) {
          if (html === null) { return; }
          region.innerHTML = html;
          region.removeAttribute("data-poll-error");
          if (status) { status.textContent = "Updated " + new Date().toLocaleTimeString(); }
          document.dispatchEvent(new CustomEvent("console:refreshed", { detail: name }));
        })
        .catch(function (error) {
          region.setAttribute("data-poll-error", String(error));
          if (status) { status.textContent = "Update failed (" + error.message + "); retrying"; }
        })
        .then(schedule);
    }

    if (toggle) {
      toggle.addEventListener("click", function () {
        paused = !paused;
        toggle.setAttribute("aria-pressed", String(paused));
        toggle.textContent = paused ? "Resume updates" : "Pause updates";
        if (status && paused) { status.textContent = "Updates paused"; }
      });
    }
    schedule();
  }

  function selectAll(box) {
    box.addEventListener("change", function () {
      var form = box.closest("form");
      if (!form) { return; }
      form.querySelectorAll('input[type="checkbox"][name="ids"]').forEach(function (item) {
        item.checked = box.checked;
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-poll]").forEach(poll);
    document.querySelectorAll("[data-select-all]").forEach(selectAll);
  });
})();
