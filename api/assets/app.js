// minutes: the upload page's progress bar and checks, and the job page's live progress.
// Plain JavaScript, no build step; the pages work without it (plain form post, links).
"use strict";

(function () {
  var STAGES = ["upload", "decode", "transcribe", "summarize", "render", "notify"];

  function bytes(n) {
    if (n >= 1e9) return (n / 1e9).toFixed(1) + " GB";
    if (n >= 1e6) return (n / 1e6).toFixed(1) + " MB";
    return Math.max(1, Math.round(n / 1e3)) + " KB";
  }

  function clock(seconds) {
    var s = Math.max(0, Math.round(seconds)), h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), r = s % 60;
    var mm = h > 0 && m < 10 ? "0" + m : "" + m;
    return (h > 0 ? h + ":" : "") + mm + ":" + (r < 10 ? "0" : "") + r;
  }

  function uploadPage(form) {
    var file = document.getElementById("file"), drop = document.getElementById("drop");
    var error = document.getElementById("error"), progress = document.getElementById("progress");
    var bar = document.getElementById("upload-bar"), text = document.getElementById("upload-text");
    var submit = document.getElementById("submit"), cancel = document.getElementById("cancel");
    var max = Number(form.dataset.maxBytes), extensions = form.dataset.extensions.split(",");
    var request = null;

    function check() {
      error.textContent = "";
      var chosen = file.files && file.files[0];
      if (!chosen) { error.textContent = "Choose a recording first."; return false; }
      if (chosen.size === 0) { error.textContent = chosen.name + " is empty."; return false; }
      if (chosen.size > max) { error.textContent = chosen.name + " is " + bytes(chosen.size) + "; the largest accepted is " + bytes(max) + "."; return false; }
      var name = chosen.name.toLowerCase();
      var known = extensions.some(function (ext) { return name.endsWith(ext); });
      var media = /^(audio|video)\//.test(chosen.type);
      if (!known && !media) { error.textContent = chosen.name + " does not look like an audio or video recording."; return false; }
      return true;
    }

    ["dragenter", "dragover"].forEach(function (type) {
      drop.addEventListener(type, function (event) { event.preventDefault(); drop.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (type) {
      drop.addEventListener(type, function () { drop.classList.remove("over"); });
    });
    drop.addEventListener("drop", function (event) {
      event.preventDefault();
      if (event.dataTransfer && event.dataTransfer.files.length) { file.files = event.dataTransfer.files; check(); }
    });
    file.addEventListener("change", check);

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!check()) { file.focus(); return; }
      var data = new FormData(form);
      request = new XMLHttpRequest();
      request.open("POST", "/api/v1/jobs");
      // The session's form token: the API refuses cookie-authenticated writes without it.
      var token = document.querySelector('meta[name="csrf-token"]');
      if (token) request.setRequestHeader("X-CSRF-Token", token.content);
      request.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable) return;
        var percent = Math.floor(e.loaded / e.total * 100);
        bar.value = percent;
        text.textContent = bytes(e.loaded) + " of " + bytes(e.total) + " (" + percent + "%)";
      });
      request.addEventListener("load", function () {
        var body = {};
        try { body = JSON.parse(request.responseText); } catch (ignored) { body = {}; }
        if (request.status === 202 && body.id) { window.location.assign("/jobs/" + body.id); return; }
        finish();
        error.textContent = body.message || ("The server answered " + request.status + ".");
      });
      request.addEventListener("error", function () { finish(); error.textContent = "The upload failed: the server could not be reached."; });
      request.addEventListener("abort", function () { finish(); error.textContent = "Upload cancelled."; });
      progress.hidden = false; submit.disabled = true; bar.value = 0; text.textContent = "";
      request.send(data);
      cancel.focus();
    });
    cancel.addEventListener("click", function () { if (request) request.abort(); });

    function finish() { progress.hidden = true; submit.disabled = false; request = null; }
  }

  function jobPage(section) {
    var state = section.dataset.state;
    if (state === "done" || state === "failed" || state === "cancelled") return;
    var started = Date.parse(section.dataset.started);
    var bar = document.getElementById("job-bar"), percentText = document.getElementById("percent");
    var status = document.getElementById("status"), timing = document.getElementById("timing");
    var words = document.getElementById("state"), items = document.querySelectorAll("#timeline li");
    var percent = Number(bar.value);

    function mark(stage) {
      var current = STAGES.indexOf(stage);
      if (current < 0) return;
      items.forEach(function (item, i) {
        item.className = i < current ? "done" : (i === current ? "current" : "pending");
        if (i === current) item.setAttribute("aria-current", "step"); else item.removeAttribute("aria-current");
      });
      words.textContent = "Working";
    }

    function tick() {
      var elapsed = (Date.now() - started) / 1000;
      var line = "Elapsed " + clock(elapsed);
      if (percent >= 5 && percent < 100) line += " · about " + clock(elapsed * (100 - percent) / percent) + " left";
      timing.textContent = line;
    }
    setInterval(tick, 1000);
    tick();

    var events = new EventSource("/api/v1/jobs/" + section.dataset.job + "/events");
    events.addEventListener("progress", function (event) {
      var data = JSON.parse(event.data);
      if (STAGES.indexOf(data.stage) >= 0) {
        mark(data.stage);
        percent = data.percent;
        bar.value = Math.floor(percent);
        percentText.textContent = Math.floor(percent) + "%";
        if (data.message) status.textContent = data.message;
      }
    });
    events.addEventListener("end", function () {
      events.close();
      bar.value = 100;
      window.location.reload();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("upload");
    if (form) uploadPage(form);
    var job = document.getElementById("job");
    if (job) jobPage(job);
  });
})();
