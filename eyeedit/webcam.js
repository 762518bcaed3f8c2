() => {
  // The Webcam tab: camera frames go to the server's /webcam socket as JPEG, edited frames come
  // back and are drawn on the canvas. Two frames may be in flight, so that encoding and sending
  // the next frame overlap the server's work on this one; more would only add latency.
  const MAX_IN_FLIGHT = 2;
  const JPEG_QUALITY = 0.85;
  const state = { ws: null, stream: null, inFlight: 0, fresh: false, shown: [], frames: 0, camera: 0,
                  last: null, effect: '', error: '', grab: document.createElement('canvas') };
  const $ = (id) => document.getElementById(id);

  function say(text) {
    const el = $('webcam-status');
    if (el) el.textContent = text;
  }

  function socketUrl() {
    const url = new URL('webcam', window.location.href.split('?')[0].replace(/[^/]*$/, ''));
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return url.href;
  }

  // Send the newest camera frame when a slot is free; a frame is never sent twice.
  function pump() {
    const video = $('webcam-video');
    const ws = state.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || !state.fresh || state.inFlight >= MAX_IN_FLIGHT
        || !video || !video.videoWidth) return;
    state.fresh = false;
    state.inFlight++;
    const grab = state.grab;
    grab.width = video.videoWidth;
    grab.height = video.videoHeight;
    grab.getContext('2d').drawImage(video, 0, 0);
    grab.toBlob((blob) => {
      if (blob && state.ws === ws && ws.readyState === WebSocket.OPEN) ws.send(blob);
      else state.inFlight--;
    }, 'image/jpeg', JPEG_QUALITY);
  }

  function watchCamera(video) {
    const onFrame = () => {
      if (!state.stream) return;
      state.camera++;
      state.fresh = true;
      pump();
      video.requestVideoFrameCallback(onFrame);
    };
    if ('requestVideoFrameCallback' in video) video.requestVideoFrameCallback(onFrame);
    else state.timer = setInterval(() => { state.camera++; state.fresh = true; pump(); }, 33);
  }

  async function drawFrame(blob) {
    const bitmap = await createImageBitmap(blob);
    const canvas = $('webcam-canvas');
    if (canvas) {
      canvas.width = bitmap.width;
      canvas.height = bitmap.height;
      canvas.getContext('2d').drawImage(bitmap, 0, 0);
    }
    bitmap.close();
    const now = performance.now();
    state.frames++;
    state.shown.push(now);
    while (state.shown.length > 2 && now - state.shown[0] > 2000) state.shown.shift();
    showRate();
  }

  // Frames drawn per second over the last two seconds, as the visitor sees them.
  function fps() {
    const t = state.shown;
    return t.length < 2 ? 0 : (t.length - 1) * 1000 / (t[t.length - 1] - t[0]);
  }

  function showRate() {
    const el = $('webcam-fps');
    const s = state.last;
    if (!el || !s) return;
    const faces = s.faces === 1 ? '1 face' : `${s.faces} faces`;
    el.textContent = `${state.effect}: ${fps().toFixed(1)} FPS · ${s.width}x${s.height} · ${faces} · ` +
                     `server ${s.ms.toFixed(0)} ms a frame`;
  }

  function onText(text) {
    const msg = JSON.parse(text);
    if (msg.kind === 'frame') {
      state.inFlight = Math.max(0, state.inFlight - 1);
      if (msg.error) say(msg.error);
      else { state.last = msg; say(''); }
      pump();
    } else if (msg.error) {
      state.error = msg.error;
      say(msg.error);
    } else {
      state.effect = msg.effect;
    }
  }

  async function start(settings) {
    stop();
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      // Browsers offer cameras only to https pages and to this computer's own address.
      say('This browser offers no camera to this page: open it over https, or as ' +
          'http://localhost on the computer that runs eyeedit serve.');
      return;
    }
    say('Starting the camera…');
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia(
        { video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
    } catch (err) {
      say(`The camera cannot be used: ${err.message || err.name}`);
      return;
    }
    state.stream = stream;
    const video = $('webcam-video');
    video.srcObject = stream;
    await video.play();
    const ws = new WebSocket(socketUrl());
    ws.binaryType = 'blob';
    state.ws = ws;
    ws.onopen = () => { ws.send(JSON.stringify(settings)); };
    ws.onmessage = (ev) => (typeof ev.data === 'string' ? onText(ev.data) : drawFrame(ev.data));
    ws.onclose = () => {
      if (state.ws !== ws) return;
      const why = state.error;
      stop();
      say(why || 'The server closed the stream.');
    };
    watchCamera(video);
  }

  function stop() {
    const ws = state.ws;
    state.ws = null;
    if (ws) ws.close();
    if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
    state.stream = null;
    if (state.timer) clearInterval(state.timer);
    state.timer = null;
    const video = $('webcam-video');
    if (video) video.srcObject = null;
    Object.assign(state, { inFlight: 0, fresh: false, shown: [], error: '' });
    say('The camera is off.');
  }

  function configure(settings) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(settings));
  }

  window.eyeeditWebcam = { start, stop, configure, fps, frames: () => state.frames,
                           cameraFrames: () => state.camera };
}
