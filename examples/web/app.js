// Few-shot enrollment with an anil-edge export in the browser (onnxruntime-web, WebAssembly).
// The page reads MODEL/model.json (the sidecar: onnxruntime-web cannot read custom metadata),
// brings each image to the model's size with model.preprocess.onnx, embeds it with
// model.pixels.onnx, adapts the head with model.head_adapt.onnx and
// classifies with model.head_classify.onnx — the same steps as examples/node.
// window.anilEdge.enrollAndPredict(classes, queries) is the page's API (the test drives it).
'use strict';

const MODEL = new URLSearchParams(location.search).get('model') || 'model/';
ort.env.wasm.wasmPaths = new URL('node_modules/onnxruntime-web/dist/', location.href).href;
ort.env.wasm.numThreads = 1; // a static page is not cross-origin isolated: no wasm threads

// The bytes of a file model.json lists, checked against its SHA-256 (where the page has
// WebCrypto: https or localhost) — a file of another export is refused, naming it.
async function verifiedBytes(base, entry) {
  const response = await fetch(base + entry.path);
  if (!response.ok) throw new Error(`${base + entry.path}: HTTP ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (globalThis.crypto && crypto.subtle) {
    const digest = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)))
      .map((x) => x.toString(16).padStart(2, '0')).join('');
    if (digest !== entry.sha256) {
      throw new Error(`${entry.path} is not the file model.json lists (SHA-256 ${digest.slice(0, 12)}…, expected ` +
        `${entry.sha256.slice(0, 12)}…): a file of another export? export the model again`);
    }
  }
  return bytes;
}

async function loadModel(base) {
  const response = await fetch(base + 'model.json');
  if (!response.ok) throw new Error(`${base}model.json: HTTP ${response.status}: serve an anil-edge export at ${base}`);
  let sidecar;
  try { sidecar = await response.json(); } catch (err) {
    throw new Error(`${base}model.json is not JSON: serve an anil-edge export at ${base} (or pass ?model=URL)`);
  }
  const open = async (kind) => ort.InferenceSession.create(await verifiedBytes(base, sidecar.files[kind]),
    { executionProviders: ['wasm'] });
  const missing = ['backbone_pixels', 'head_adapt', 'head_classify', 'preprocess'].filter((k) => !sidecar.files[k]);
  if (missing.length) throw new Error(`${base}model.json lists no ${missing.join(', ')}: export the model again with anil-edge >= 0.2.0`);
  const [backbone, adapt, classify, preprocess] = await Promise.all(
    ['backbone_pixels', 'head_adapt', 'head_classify', 'preprocess'].map(open));
  return { sidecar, prep: sidecar.metadata.preprocessing, backbone, adapt, classify, preprocess };
}

// An image (anything drawImage takes) as uint8 (H, W, C) at the model's size: its RGBA pixels
// at its own size (the canvas only decodes), through model.preprocess.onnx, which composites,
// converts, resizes and crops exactly as the Python runtime and training decode.
async function pixels(model, image) {
  const w = image.naturalWidth || image.width, h = image.naturalHeight || image.height;
  const canvas = document.createElement('canvas');
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(image, 0, 0);
  const rgba = new ort.Tensor('uint8', new Uint8Array(ctx.getImageData(0, 0, w, h).data.buffer), [1, h, w, 4]);
  return (await model.preprocess.run({ rgba })).pixels.data;
}

async function embed(model, images) {
  const [h, w] = model.prep.input_size, c = model.prep.channels;
  const data = new Uint8Array(images.length * h * w * c);
  for (const [i, img] of images.entries()) data.set(await pixels(model, img), i * h * w * c);
  const out = await model.backbone.run({ pixels: new ort.Tensor('uint8', data, [images.length, h, w, c]) });
  return out.embeddings;
}

async function enroll(model, classes) { // classes: [{label, images}]
  const images = classes.flatMap((c) => c.images);
  const labels = BigInt64Array.from(classes.flatMap((c, k) => c.images.map(() => BigInt(k))));
  const support = await embed(model, images);
  return model.adapt.run({ embeddings: support, labels: new ort.Tensor('int64', labels, [labels.length]) });
}

async function predict(model, head, labels, images) {
  const queries = await embed(model, images);
  const r = await model.classify.run({ queries, weight: head.weight, bias: head.bias, class_means: head.class_means });
  const C = labels.length;
  return images.map((_, i) => {
    const probabilities = Array.from(r.probabilities.data.slice(i * C, (i + 1) * C));
    const best = probabilities.indexOf(Math.max(...probabilities));
    const D = queries.dims[1], embedding = Array.from(queries.data.slice(i * D, (i + 1) * D));
    return { label: labels[best], probability: probabilities[best], probabilities, open_set_score: r.open_set_score.data[i], embedding };
  });
}

const decodeURL = (url) => new Promise((ok, fail) => { const im = new Image(); im.onload = () => ok(im); im.onerror = fail; im.src = url; });

const ready = loadModel(MODEL);
window.anilEdge = {
  ready,
  // classes: {label: [image URLs]}, queries: [image URLs] -> one result per query
  async enrollAndPredict(classes, queries) {
    const model = await ready;
    const enrolled = await Promise.all(Object.entries(classes).map(async ([label, urls]) =>
      ({ label, images: await Promise.all(urls.map(decodeURL)) })));
    const head = await enroll(model, enrolled);
    const images = await Promise.all(queries.map(decodeURL));
    const results = await predict(model, head, enrolled.map((c) => c.label), images);
    clearPad();
    pen.imageSmoothingEnabled = false;
    pen.drawImage(images[images.length - 1], 0, 0, pad.width, pad.height); // the last query, on the pad
    show(results[results.length - 1], enrolled.map((c) => c.label), enrolled);
    return results;
  },
};

// -- the page: draw or upload examples per class, enroll, draw a query -----------------------
const pad = document.getElementById('pad'), pen = pad.getContext('2d');
const examples = new Map(); let head = null;
function clearPad() { pen.fillStyle = '#fff'; pen.fillRect(0, 0, pad.width, pad.height); }
clearPad();
let drawing = false;
pad.onpointerdown = (e) => { drawing = true; pen.beginPath(); pen.moveTo(e.offsetX, e.offsetY); };
pad.onpointermove = (e) => { if (!drawing) return; pen.lineWidth = 14; pen.lineCap = 'round'; pen.lineTo(e.offsetX, e.offsetY); pen.stroke(); };
window.onpointerup = () => { drawing = false; };
document.getElementById('clear').onclick = clearPad;

function snapshot() { const c = document.createElement('canvas'); c.width = pad.width; c.height = pad.height; c.getContext('2d').drawImage(pad, 0, 0); return c; }
function addExample(label, image) {
  if (!examples.has(label)) examples.set(label, []);
  examples.get(label).push(image); head = null; listClasses();
}
function listClasses() {
  document.getElementById('classes').innerHTML = [...examples].map(([k, v]) => `<span>${k}: ${v.length}</span>`).join('');
}
document.getElementById('add').onclick = () => { addExample(document.getElementById('label').value || '?', snapshot()); clearPad(); };
document.getElementById('upload').onchange = async (e) => {
  for (const file of e.target.files) addExample(document.getElementById('label').value || '?', await decodeURL(URL.createObjectURL(file)));
};
document.getElementById('enroll').onclick = async () => {
  const model = await ready;
  head = await enroll(model, [...examples].map(([label, images]) => ({ label, images })));
  document.getElementById('status').textContent = `enrolled ${examples.size} classes`;
};
document.getElementById('predict').onclick = async () => {
  const model = await ready;
  if (!head) await document.getElementById('enroll').onclick();
  const [r] = await predict(model, head, [...examples.keys()], [snapshot()]);
  show(r, [...examples.keys()], null);
};

function show(result, labels, enrolled) {
  if (enrolled) { examples.clear(); enrolled.forEach((c) => examples.set(c.label, c.images)); listClasses(); }
  document.getElementById('answer').textContent = `→ ${result.label}  (p = ${result.probability.toFixed(3)}, open-set score ${result.open_set_score.toFixed(3)})`;
  document.getElementById('probs').innerHTML = '<tr><th>class</th><th>probability</th></tr>' +
    labels.map((l, i) => `<tr><td>${l}</td><td>${result.probabilities[i].toFixed(3)}</td></tr>`).join('');
}
ready.then((m) => { document.getElementById('status').textContent =
  `model: ${m.prep.channels}×${m.prep.input_size.join('×')} input, ${m.sidecar.metadata.embedding_dim}-d embeddings, ` +
  `${m.sidecar.metadata.adaptation.adaptation_steps} adaptation steps (${m.sidecar.metadata.adaptation.head_init})`; },
(err) => { document.getElementById('status').textContent = 'cannot load the model: ' + err; });
