// suanli console: follows a job's log over server-sent events (the page works without it).
"use strict";
(function () {
  const log = document.getElementById("log");
  if (!log || !log.dataset.events) return;
  const live = document.getElementById("live");
  const stateEl = document.getElementById("job-state");
  const source = new EventSource(log.dataset.events);
  const setState = (state) => {
    if (stateEl && state) { stateEl.textContent = state; stateEl.className = "state-" + state; }
  };
  if (live) live.textContent = "(following)";
  source.addEventListener("log", (event) => {
    const data = JSON.parse(event.data);
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.append(document.createTextNode(data.text));
    if (atBottom) log.scrollTop = log.scrollHeight;
    setState(data.state);
  });
  source.addEventListener("end", (event) => {
    setState(event.data);
    if (live) live.textContent = "(ended: " + event.data + ")";
    log.dataset.ended = event.data;
    const cancel = document.getElementById("cancel");
    if (cancel) cancel.closest("form").remove();
    source.close();
    // A job that ended while watched: reload once for its final history and runs.
    if (log.dataset.state === "queued" || log.dataset.state === "running") location.reload();
  });
  source.addEventListener("failed", () => {
    if (live) live.textContent = "(log unavailable)";
    source.close();
  });
})();

// The planner's config.json file input fills the text area it is sent in.
(function () {
  const file = document.getElementById("hf_file");
  const text = document.getElementById("hf_config");
  if (!file || !text) return;
  file.addEventListener("change", () => {
    const chosen = file.files && file.files[0];
    if (!chosen) return;
    if (chosen.size > 65536) { text.value = ""; alert("config.json is larger than 64 KiB"); return; }
    chosen.text().then((content) => { text.value = content; });
  });
})();
