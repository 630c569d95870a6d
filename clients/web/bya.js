// WHIP and WHEP from the browser: a few lines each, shared by the speaker and viewer pages.
// The server (aiortc) takes no trickle ICE, so every candidate goes in the offer: wait for gathering.
"use strict";

const GATHER_TIMEOUT_MS = 2000; // loopback and LAN candidates come in well under this

function tokenFromHash() {
  const m = location.hash.match(/token=([^&]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

function authHeaders(token, extra = {}) {
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, GATHER_TIMEOUT_MS);
  });
}

async function exchange(pc, url, token) {
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const res = await fetch(url, {
    method: "POST",
    headers: authHeaders(token, { "Content-Type": "application/sdp" }),
    body: pc.localDescription.sdp,
  });
  if (res.status !== 201) throw new Error(`${url}: ${res.status} ${(await res.text()).trim()}`);
  const location = new URL(res.headers.get("Location"), url).toString();
  await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
  return location;
}

// Publish a microphone stream as character `character` (name or index). Returns {pc, location, id}.
async function whipPublish(character, stream, token) {
  const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
  for (const track of stream.getAudioTracks()) pc.addTransceiver(track, { direction: "sendonly" });
  const location = await exchange(pc, new URL(`/whip/${encodeURIComponent(character)}`, window.location.href).toString(), token);
  return { pc, location, id: location.split("/").pop() };
}

// Play the room: video (and its delayed mixed audio) into a <video> element. Returns {pc, location}.
async function whepPlay(video, token) {
  const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addTransceiver("audio", { direction: "recvonly" });
  const stream = new MediaStream();
  pc.ontrack = (ev) => { stream.addTrack(ev.track); video.srcObject = stream; };
  const location = await exchange(pc, new URL("/whep", window.location.href).toString(), token);
  return { pc, location };
}

// End a WHIP or WHEP session (DELETE its Location) and close the peer connection.
async function endSession(session, token) {
  if (!session) return;
  try {
    await fetch(session.location, { method: "DELETE", headers: authHeaders(token) });
  } finally {
    session.pc.close();
  }
}

async function api(method, path, token, body) {
  const init = { method, headers: authHeaders(token, body ? { "Content-Type": "application/json" } : {}) };
  if (body) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${(await res.text()).trim()}`);
  return res.json();
}
