// Few-shot enrollment with an anil-edge export in the browser (onnxruntime-web, WebAssembly).
// The page reads MODEL/model.json (the sidecar: onnxruntime-web cannot read custom metadata),
// brings each image to the model's size with model.preprocess.onnx, embeds it with
// model.pixels.onnx, adapts the head with model.head_adapt.onnx and
// classifies with model.head_classify.onnx — the same steps as examples/node.
// window.anilEdge.enrollAndPredict(classes, queries, reject) is the page's API (the test drives it).
// The steps themselves are anil_edge_client.mjs, which the Node client imports too.
import * as client from './anil_edge_client.mjs';

const MODEL = new URLSearchParams(location.search).get('model') || 'model/';
ort.env.wasm.wasmPaths = new URL('node_modules/onnxruntime-web/dist/', location.href).href;
ort.env.wasm.numThreads = 1; // a static page is not cross-origin isolated: no wasm threads

async function loadModel(base) {
  const response = await fetch(base + 'model.json');
  if (!response.ok) throw new Error(`${base}model.json: HTTP ${response.status}: serve an anil-edge export at ${base}`);
  let sidecar;
  try { sidecar = await response.json(); } catch (err) {
    throw new Error(`${base}model.json is not JSON: serve an anil-edge export at ${base} (or pass ?model=URL)`);
  }
  const read = async (name) => {
    const file = await fetch(base + name);
    if (!file.ok) throw new Error(`${base + name}: HTTP ${file.status}`);
    return new Uint8Array(await file.arrayBuffer());
  };
  return client.openModel(ort, sidecar, { read, options: { executionProviders: ['wasm'] } });
}

// An image (anything drawImage takes) as RGBA at its own size: the canvas only decodes;
// model.preprocess.onnx resizes and converts it as training did.
function rgbaOf(image) {
  const width = image.naturalWidth || image.width, height = image.naturalHeight || image.height;
  const canvas = document.createElement('canvas');
  canvas.width = width; canvas.height = height;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(image, 0, 0);
  return { width, height, data: ctx.getImageData(0, 0, width, height).data };
}

const enroll = (model, classes) => client.enroll(model, classes.map((c) => ({ label: c.label, images: c.images.map(rgbaOf) })));
const predict = (model, head, images, reject) =>
  client.predict(model, head, images.map(rgbaOf), client.rejectThreshold(model, reject));

const decodeURL = (url) => new Promise((ok, fail) => { const im = new Image(); im.onload = () => ok(im); im.onerror = fail; im.src = url; });

const ready = loadModel(MODEL);
window.anilEdge = {
  ready,
  // classes: {label: [image URLs]}, queries: [image URLs], reject: a calibrated false-accept rate
  // (0.01, 0.05) or null -> one result per query (label null: "unknown")
  async enrollAndPredict(classes, queries, reject = null) {
    const model = await ready;
    const enrolled = await Promise.all(Object.entries(classes).map(async ([label, urls]) =>
      ({ label, images: await Promise.all(urls.map(decodeURL)) })));
    const head = await enroll(model, enrolled);
    const images = await Promise.all(queries.map(decodeURL));
    const results = await predict(model, head, images, reject);
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
// Example photos: files, or the camera on a phone (capture="environment"); any size: the
// model's own preprocessing (resize, centre crop) runs in model.preprocess.onnx.
const addFiles = async (e) => {
  for (const file of e.target.files) addExample(document.getElementById('label').value || '?', await decodeURL(URL.createObjectURL(file)));
};
document.getElementById('upload').onchange = addFiles;
document.getElementById('camera').onchange = addFiles;
document.getElementById('enroll').onclick = async () => {
  const model = await ready;
  head = await enroll(model, [...examples].map(([label, images]) => ({ label, images })));
  document.getElementById('status').textContent = `enrolled ${examples.size} classes`;
};
// Classify one image (the drawing, or a query photo) with the classes enrolled so far.
async function predictOne(image) {
  const model = await ready;
  if (!head) await document.getElementById('enroll').onclick();
  const rate = document.getElementById('reject').value;
  const [r] = await predict(model, head, [image], rate === '' ? null : Number(rate));
  show(r, [...examples.keys()], null);
}
document.getElementById('predict').onclick = () => predictOne(snapshot());
document.getElementById('query').onchange = async (e) => { // a photo as the query, shown on the pad
  const [file] = e.target.files;
  if (!file) return;
  const photo = await decodeURL(URL.createObjectURL(file));
  clearPad();
  pen.drawImage(photo, 0, 0, pad.width, pad.height);
  await predictOne(photo);
};

function show(result, labels, enrolled) {
  if (enrolled) { examples.clear(); enrolled.forEach((c) => examples.set(c.label, c.images)); listClasses(); }
  document.getElementById('answer').textContent = `→ ${result.label === null ? 'unknown' : result.label}  (p = ${result.probability.toFixed(3)}, open-set score ${result.open_set_score.toFixed(3)})`;
  document.getElementById('probs').innerHTML = '<tr><th>class</th><th>probability</th></tr>' +
    labels.map((l, i) => `<tr><td>${l}</td><td>${result.probabilities[i].toFixed(3)}</td></tr>`).join('');
}
ready.then((m) => { document.getElementById('status').textContent =
  `model: ${m.prep.channels}×${m.prep.input_size.join('×')} input, ${m.sidecar.metadata.embedding_dim}-d embeddings, ` +
  `${m.sidecar.metadata.adaptation.adaptation_steps} adaptation steps (${m.sidecar.metadata.adaptation.head_init})`; },
(err) => { document.getElementById('status').textContent = 'cannot load the model: ' + err; });
