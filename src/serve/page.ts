// The page a person uses a model with: drop or pick an image, or take one from the webcam, and
// see the top classes. In 'local' mode (visiontune export --web) the model runs in the page
// itself, in onnxruntime-web's WebAssembly backend, on the graph with its preprocessing (the page
// only decodes the image and scales its shorter side to the item size); in 'server' mode
// (visiontune serve) the page posts the image to /predict.

export interface PageOptions {
  mode: 'local' | 'server';
  title: string;
  classes: readonly string[];
  /** Presizing: the shorter side the model's images had (local mode scales to it). */
  itemSize: number;
  topK: number;
  /** Local mode: the model file and onnxruntime-web's script, relative to the page. */
  modelUrl?: string;
  ortUrl?: string;
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Returns the page's HTML (one file; its script inline). */
export function pageHtml(o: PageOptions): string {
  const config = JSON.stringify({ mode: o.mode, classes: o.classes, itemSize: o.itemSize, topK: o.topK, modelUrl: o.modelUrl ?? 'model.onnx' })
    .replace(/</g, '\\u003c');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(o.title)}</title><link rel="icon" href="data:,">
<style>body{font-family:"DejaVu Sans",sans-serif;max-width:760px;margin:24px auto;color:#222}
#drop{border:2px dashed #999;border-radius:8px;padding:28px;text-align:center;cursor:pointer}#drop.over{background:#eef}
#preview{width:240px;height:auto;display:block;margin:12px 0;image-rendering:auto}table{border-collapse:collapse;margin-top:8px}
td{padding:3px 10px;border-bottom:1px solid #ddd}td.p{text-align:right;font-variant-numeric:tabular-nums}
.bar{background:#1f77b4;height:10px}#status{color:#555}video{max-width:320px;display:none}</style></head>
<body><h1>${esc(o.title)}</h1>
<p id="status">Loading…</p>
<div id="drop">Drop an image here, or <label><u>choose one</u><input id="file" type="file" accept="image/*" hidden></label>
&nbsp;·&nbsp;<button id="camera" type="button">Use the webcam</button> <button id="snap" type="button" hidden>Take the picture</button></div>
<video id="video" autoplay playsinline></video>
<img id="preview" alt="">
<table id="result"></table>
${o.mode === 'local' ? `<script src="${esc(o.ortUrl ?? 'ort.wasm.min.js')}"></script>` : ''}
<script>
const CONFIG = ${config};
const status = document.getElementById('status');
const table = document.getElementById('result');
let session = null;

function show(probs) {
  const order = probs.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0]).slice(0, CONFIG.topK);
  table.innerHTML = '';
  for (const [p, i] of order) {
    const row = table.insertRow();
    row.insertCell().textContent = CONFIG.classes[i];
    const cell = row.insertCell(); cell.className = 'p'; cell.textContent = (100 * p).toFixed(2) + '%';
    const bar = row.insertCell(); const b = document.createElement('div'); b.className = 'bar'; b.style.width = Math.round(200 * p) + 'px'; bar.appendChild(b);
  }
  table.dataset.top = CONFIG.classes[order[0][1]];
  table.dataset.probability = String(order[0][0]);
  status.textContent = 'Top class: ' + CONFIG.classes[order[0][1]];
}

// The image's pixels as the model's were made: the shorter side scaled to the item size.
async function pixelsOf(blob) {
  const bitmap = await createImageBitmap(blob);
  const scale = CONFIG.itemSize / Math.min(bitmap.width, bitmap.height);
  const w = Math.max(1, Math.round(bitmap.width * scale)), h = Math.max(1, Math.round(bitmap.height * scale));
  const canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(bitmap, 0, 0, w, h);
  const rgba = ctx.getImageData(0, 0, w, h).data;
  const rgb = new Uint8Array(w * h * 3);
  for (let p = 0; p < w * h; p++) { rgb[3 * p] = rgba[4 * p]; rgb[3 * p + 1] = rgba[4 * p + 1]; rgb[3 * p + 2] = rgba[4 * p + 2]; }
  return { rgb, w, h };
}

async function classify(blob) {
  document.getElementById('preview').src = URL.createObjectURL(blob);
  status.textContent = 'Thinking…';
  try {
    if (CONFIG.mode === 'local') {
      const { rgb, w, h } = await pixelsOf(blob);
      const out = await session.run({ pixels: new ort.Tensor('uint8', rgb, [1, h, w, 3]) });
      show(Array.from(out.probabilities.data));
    } else {
      const r = await fetch('predict?top_k=' + CONFIG.classes.length, { method: 'POST', body: blob, headers: { 'content-type': blob.type || 'application/octet-stream' } });
      const body = await r.json();
      if (!r.ok) { status.textContent = 'The server says: ' + body.error; return; }
      const probs = new Array(CONFIG.classes.length).fill(0);
      for (const c of body.predictions) probs[c.index] = c.prob;
      show(probs);
    }
  } catch (e) {
    status.textContent = 'Could not classify this image: ' + (e && e.message ? e.message : e);
  }
}

const drop = document.getElementById('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); if (e.dataTransfer.files[0]) classify(e.dataTransfer.files[0]); });
document.getElementById('file').addEventListener('change', (e) => { if (e.target.files[0]) classify(e.target.files[0]); });
document.getElementById('camera').addEventListener('click', async () => {
  const video = document.getElementById('video');
  try {
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: true });
    video.style.display = 'block';
    document.getElementById('snap').hidden = false;
  } catch (e) { status.textContent = 'No webcam: ' + e.message; }
});
document.getElementById('snap').addEventListener('click', () => {
  const video = document.getElementById('video');
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  canvas.getContext('2d').drawImage(video, 0, 0);
  canvas.toBlob((b) => b && classify(b), 'image/png');
});

(async () => {
  if (CONFIG.mode === 'local') {
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.wasmPaths = new URL('.', location.href).href;
    session = await ort.InferenceSession.create(CONFIG.modelUrl, { executionProviders: ['wasm'] });
  }
  status.textContent = 'Ready: ' + CONFIG.classes.length + ' classes';
  document.body.dataset.ready = '1';
})().catch((e) => { status.textContent = 'Could not load the model: ' + e.message; });
</script></body></html>
`;
}
