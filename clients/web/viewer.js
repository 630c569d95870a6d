// The clean viewer (an OBS Browser Source): the room's video filling the window, reconnecting by itself.
// URL: /viewer#token=T ; add ?audio=1 to play the mixed audio too, ?fit=cover to crop instead of letterbox.
"use strict";

const RETRY_MS = 2000;
const video = document.getElementById("stage");
const params = new URLSearchParams(location.search);
const token = tokenFromHash();
video.muted = params.get("audio") !== "1";
video.style.objectFit = params.get("fit") === "cover" ? "cover" : "contain";
let session = null;

async function connect() {
  try {
    session = await whepPlay(video, token);
    session.pc.onconnectionstatechange = () => {
      if (["failed", "closed"].includes(session.pc.connectionState)) retry();
    };
  } catch (err) {
    console.warn(err);
    retry();
  }
}

function retry() {
  if (session) session.pc.close();
  session = null;
  setTimeout(connect, RETRY_MS);
}

window.addEventListener("pagehide", () => { if (session) endSession(session, token); });
connect();
