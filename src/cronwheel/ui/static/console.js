/* cronwheel console: the few things a page does beyond plain HTML. Every page works without
   this file; it adds a live log, confirmations, and showing only the fields a form needs. */
(function () {
  "use strict";

  function followLog(pre) {
    var url = pre.getAttribute("data-follow");
    var status = document.getElementById("follow-status");
    if (!url || !window.EventSource) { return; }
    var source = new EventSource(url);
    source.addEventListener("output", function (event) {
      var data = JSON.parse(event.data);
      var atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.appendChild(document.createTextNode(data.text));
      ["log-end", "log-size"].forEach(function (id) {
        var node = document.getElementById(id);
        if (node) { node.textContent = String(data.next_offset); }
      });
      if (atBottom) { pre.scrollTop = pre.scrollHeight; }
    });
    source.addEventListener("end", function (event) {
      var data = JSON.parse(event.data);
      source.close();
      if (status) { status.textContent = "The task ended (" + data.state + "). Reloading…"; }
      window.setTimeout(function () { window.location.reload(); }, 600);
    });
    source.onerror = function () {
      if (status) { status.textContent = "Following paused: reconnecting…"; }
    };
  }

  function confirmations() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
  }

  function kinds() {
    var form = document.querySelector("form[data-kinds]");
    if (!form) { return; }
    var select = form.querySelector("#target_kind");
    function show() {
      form.querySelectorAll("[data-kind]").forEach(function (part) {
        part.hidden = part.getAttribute("data-kind") !== select.value;
      });
    }
    select.addEventListener("change", show);
    show();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("pre[data-follow]").forEach(followLog);
    confirmations();
    kinds();
  });
})();
