// The speaker page: join a character with the microphone (WHIP), watch the room (WHEP), re-bind live.
"use strict";

const $ = (id) => document.getElementById(id);
let speaker = null; // {pc, location, id} of our WHIP session
let viewer = null;  // {pc, location} of our WHEP session

function say(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

function token() { return $("token").value.trim(); }

async function loadCharacters() {
  const view = await api("GET", "/binding", token());
  const select = $("character");
  const keep = select.value;
  select.replaceChildren(...view.characters.map((name, i) => new Option(`${i}: ${name}`, String(i))));
  if (keep) select.value = keep;
  say(`${view.characters.length} characters, ${Object.keys(view.speakers).length} speakers connected`);
}

async function join() {
  const mic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
  speaker = await whipPublish($("character").value, mic, token());
  speaker.pc.onconnectionstatechange = () => {
    say(`microphone: ${speaker ? speaker.pc.connectionState : "closed"}`);
    if (speaker && speaker.pc.connectionState === "failed") leave();
  };
  $("join").disabled = true;
  $("leave").disabled = false;
  $("rebind").disabled = false;
  say(`speaking as character ${$("character").value}`);
}

async function leave() {
  const s = speaker;
  speaker = null;
  $("join").disabled = false;
  $("leave").disabled = true;
  $("rebind").disabled = true;
  if (s) {
    s.pc.getSenders().forEach((sender) => sender.track && sender.track.stop());
    await endSession(s, token());
  }
  say("left");
}

async function rebind() {
  const character = Number($("character").value);
  await api("PUT", "/binding", token(), { inputs: { [speaker.id]: character } });
  say(`voice now drives character ${character}`);
}

async function watch() {
  if (viewer) await endSession(viewer, token());
  const stage = $("stage");
  // pixelated scaling only for small scenes: a picture scene arrives at its own size (e.g. 1280x720)
  stage.onloadedmetadata = () => stage.classList.toggle("small", stage.videoWidth <= 256);
  viewer = await whepPlay(stage, token());
  viewer.pc.onconnectionstatechange = () => say(`video: ${viewer.pc.connectionState}`);
}

function guard(fn) {
  return () => fn().catch((err) => say(String(err.message || err), true));
}

$("token").value = tokenFromHash();
$("viewer-link").href = "/viewer" + (location.hash || "");
$("refresh").onclick = guard(loadCharacters);
$("join").onclick = guard(join);
$("leave").onclick = guard(leave);
$("rebind").onclick = guard(rebind);
$("watch").onclick = guard(watch);
window.addEventListener("pagehide", () => { if (speaker) leave(); if (viewer) endSession(viewer, token()); });
guard(loadCharacters)();
