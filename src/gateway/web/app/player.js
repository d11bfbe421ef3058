// A recording's player: asciinema-player, fed the .cast file the gateway
// serves next to this page.
"use strict";
(function () {
  const box = document.getElementById("player");
  AsciinemaPlayer.create(box.dataset.src, box, { fit: "width", idleTimeLimit: 2 });
})();
