// A console in the browser: xterm.js (DOM renderer, so the text is in the
// page) wired to the gateway's WebSocket. Console bytes travel as binary
// frames both ways; text frames are the gateway's JSON notes ("live",
// "viewers", "missed") and the page's resize. A viewer's terminal takes
// no input, and the gateway drops anything a viewer sends anyway.
"use strict";
(function () {
  const box = document.getElementById("terminal");
  const status = document.getElementById("status");
  const viewers = document.getElementById("viewers");
  const name = box.dataset.console;
  const writing = box.dataset.mode === "write";
  const term = new Terminal({
    disableStdin: !writing,
    cursorBlink: writing,
    scrollback: 10000,
    fontSize: 14,
  });
  const fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(box);
  fit.fit();
  window.addEventListener("resize", () => fit.fit());

  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const mode = writing ? "write" : "watch";
  const ws = new WebSocket(
    `${scheme}//${location.host}/consoles/${encodeURIComponent(name)}/ws?mode=${mode}`
  );
  ws.binaryType = "arraybuffer";
  let history = 0;
  let live = false;

  const sendResize = () => {
    if (writing && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: "resize", cols: term.cols, rows: term.rows }));
    }
  };
  ws.onopen = () => {
    status.textContent = writing ? "connected: writing" : "connected: watching read-only";
    sendResize();
  };
  ws.onmessage = (event) => {
    if (typeof event.data !== "string") {
      const bytes = new Uint8Array(event.data);
      if (!live) history += bytes.length;
      term.write(bytes);
      return;
    }
    const note = JSON.parse(event.data);
    if (note.type === "live") {
      live = true;
      if (history > 0) term.write("\r\n\x1b[2m--- live ---\x1b[0m\r\n");
    } else if (note.type === "viewers") {
      viewers.textContent = note.names.length
        ? `Watching: ${note.names.join(", ")}`
        : "Nobody is watching.";
    } else if (note.type === "missed") {
      term.write(`\r\n\x1b[2m--- ${note.bytes} bytes skipped (this view fell behind) ---\x1b[0m\r\n`);
    }
  };
  ws.onclose = (event) => {
    status.textContent = `closed: ${event.reason || "the connection was lost"}`;
    term.options.disableStdin = true;
  };

  if (writing) {
    const encoder = new TextEncoder();
    term.onData((data) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(encoder.encode(data));
    });
    term.onBinary((data) => {
      if (ws.readyState === WebSocket.OPEN) {
        ws.send(Uint8Array.from(data, (c) => c.charCodeAt(0)));
      }
    });
    term.onResize(sendResize);
    term.focus();
  }
})();
