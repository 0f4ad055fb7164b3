// Auto-refresh for pages that change by themselves (fleet, a kiosk, a running rollout, a command's results).
// Pages opt in with <body data-refresh="SECONDS">; the choice is remembered per page kind.
(function () {
  var secs = parseInt(document.body.dataset.refresh || "0", 10);
  var box = document.getElementById("auto-refresh");
  if (!secs || !box) { return; }
  var key = "qhb-refresh:" + location.pathname.split("/")[1];
  var saved = localStorage.getItem(key);
  box.checked = saved === null ? document.body.dataset.refreshDefault === "on" : saved === "1";
  var timer = null;
  function arm() {
    if (timer) { clearTimeout(timer); timer = null; }
    if (box.checked) { timer = setTimeout(function () { location.reload(); }, secs * 1000); }
  }
  box.addEventListener("change", function () { localStorage.setItem(key, box.checked ? "1" : "0"); arm(); });
  arm();
})();
