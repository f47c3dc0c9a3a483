// Few-shot enrollment with an anil-edge export in the browser (onnxruntime-web, WebAssembly).
// The page reads MODEL/model.json (the sidecar: onnxruntime-web cannot read custom metadata),
// brings each image to the model's size with model.preprocess.onnx, embeds it with
// model.pixels.onnx, adapts the head with model.head_adapt.onnx and
// classifies with model.head_classify.onnx — the same steps as examples/node.
// window.anilEdge.enrollAndPredict(classes, queries, reject) is the page's API (the test drives it).
// The steps themselves are anil_edge_client.mjs, which the Node client imports too.
//
// The page guides: numbered steps (the current one highlighted), a control that cannot act yet is
// disabled with the reason beside it, and every failure is shown on the page (no uncaught errors).
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
  // logSeverityLevel 3: errors only; onnxruntime's warnings (an unused initializer) are not the user's concern
  return client.openModel(ort, sidecar, { read, options: { executionProviders: ['wasm'], logSeverityLevel: 3 } });
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
const predict = (model, head, images, threshold) => client.predict(model, head, images.map(rgbaOf), threshold);

const decodeURL = (url, name = 'an image') => new Promise((ok, fail) => {
  const im = new Image();
  im.onload = () => ok(im);
  im.onerror = () => fail(new Error(`${name} cannot be read as an image`));
  im.src = url;
});

// -- the page's state, and what each control can do in it ------------------------------------
const $ = (id) => document.getElementById(id);
const pad = $('pad'), pen = pad.getContext('2d');
const state = { model: null, examples: new Map(), head: null, enrolledOnce: false, ink: false, busy: false };
const ready = loadModel(MODEL);

function refresh() {
  const loaded = state.model !== null, idle = loaded && !state.busy;
  const count = [...state.examples.values()].reduce((n, images) => n + images.length, 0);
  const enrolled = state.head !== null;
  $('add').disabled = !idle || !state.ink;
  $('add').title = state.ink ? '' : 'draw an example on the pad first';
  $('upload').disabled = $('camera').disabled = !idle;
  $('enroll').disabled = !idle || count === 0;
  $('enroll-why').textContent = !loaded ? 'waiting for the model' : count === 0 ? 'add an example first (step 1)' :
    enrolled ? '' : state.enrolledOnce ? 'the examples changed: enroll again' : '';
  $('predict').disabled = !idle || !enrolled || !state.ink;
  $('query').disabled = !idle || !enrolled;
  $('predict-why').textContent = !enrolled ? 'enroll first (step 2)' : state.ink ? '' : 'draw on the pad to classify a drawing';
  const current = count === 0 ? 1 : enrolled ? 3 : 2;
  for (const step of [1, 2, 3]) $(`step${step}`).className = step === current ? 'current' : step < current ? 'done' : '';
}

// Runs a handler with the controls locked; a failure is shown on the page, never thrown.
const guarded = (handler) => async (...args) => {
  state.busy = true; refresh();
  try {
    await handler(...args);
  } catch (err) {
    say(err && err.message ? err.message : String(err), true);
  } finally {
    state.busy = false; refresh();
  }
};

function say(text, error = false) { $('status').textContent = text; $('status').className = error ? 'error' : ''; }

// -- the pad -----------------------------------------------------------------------------------
function clearPad() { pen.fillStyle = '#fff'; pen.fillRect(0, 0, pad.width, pad.height); state.ink = false; refresh(); }
// An image on the pad at its own aspect ratio, centred on white (a 150×64 photo is not stretched).
function showOnPad(image) {
  clearPad();
  const width = image.naturalWidth || image.width, height = image.naturalHeight || image.height;
  const scale = Math.min(pad.width / width, pad.height / height);
  const w = Math.round(width * scale), h = Math.round(height * scale);
  pen.imageSmoothingEnabled = scale < 1;
  pen.drawImage(image, Math.round((pad.width - w) / 2), Math.round((pad.height - h) / 2), w, h);
}
let drawing = false;
pad.onpointerdown = (e) => { if (!state.model) return; drawing = true; pen.beginPath(); pen.moveTo(e.offsetX, e.offsetY); };
pad.onpointermove = (e) => {
  if (!drawing) return;
  pen.strokeStyle = '#000'; pen.lineWidth = 14; pen.lineCap = 'round'; pen.lineTo(e.offsetX, e.offsetY); pen.stroke();
  if (!state.ink) { state.ink = true; refresh(); }
};
window.onpointerup = () => { drawing = false; };
$('clear').onclick = clearPad;
function snapshot() { const c = document.createElement('canvas'); c.width = pad.width; c.height = pad.height; c.getContext('2d').drawImage(pad, 0, 0); return c; }

// -- step 1: examples --------------------------------------------------------------------------
function addExample(label, image) {
  if (!state.examples.has(label)) state.examples.set(label, []);
  state.examples.get(label).push(image);
  state.head = null; // the enrolled head no longer matches the examples
  listClasses();
}
function listClasses() {
  const list = $('classes');
  list.replaceChildren(...[...state.examples].map(([label, images]) => {
    const tag = document.createElement('span');
    tag.textContent = `${label}: ${images.length}`;
    return tag;
  }));
}
const labelNow = () => $('label').value.trim() || '?';
$('add').onclick = guarded(async () => { addExample(labelNow(), snapshot()); clearPad(); say(`added a drawing of ${labelNow()}`); });
// Example photos: files, or the camera on a phone (capture="environment"); any size: the
// model's own preprocessing (resize, centre crop) runs in model.preprocess.onnx.
const addFiles = guarded(async (e) => {
  const files = [...e.target.files];
  const images = await Promise.all(files.map((f) => decodeURL(URL.createObjectURL(f), f.name)));
  images.forEach((image) => addExample(labelNow(), image));
  e.target.value = '';
  say(`added ${images.length} photo(s) of ${labelNow()}`);
});
$('upload').onchange = addFiles;
$('camera').onchange = addFiles;

// -- step 2: enroll ----------------------------------------------------------------------------
$('enroll').onclick = guarded(async () => {
  state.head = await enroll(state.model, [...state.examples].map(([label, images]) => ({ label, images })));
  state.enrolledOnce = true;
  say(`enrolled ${state.examples.size} class(es): now classify a drawing or a photo (step 3)`);
});

// -- step 3: classify --------------------------------------------------------------------------
function threshold() {
  const rate = $('reject').value;
  return rate === '' ? null : client.rejectThreshold(state.model, Number(rate));
}
async function classify(image) {
  const [result] = await predict(state.model, state.head, [image], threshold());
  show(result, state.head.labels, threshold());
  return result;
}
$('predict').onclick = guarded(() => classify(snapshot()));
$('query').onchange = guarded(async (e) => { // a photo as the query, shown on the pad at its aspect ratio
  const [file] = e.target.files;
  if (!file) return;
  const photo = await decodeURL(URL.createObjectURL(file), file.name);
  e.target.value = '';
  showOnPad(photo);
  await classify(photo);
});

// The answer. "unknown" shows no probability: the softmax is relative to the enrolled classes
// and would name one of them with p ≈ 1 however far the query is from all of them.
function show(result, labels, limit) {
  const rows = [];
  if (result.label === null) {
    $('answer').textContent = '→ unknown';
    $('detail').textContent = `no enrolled class is close enough: open-set score ${result.open_set_score.toFixed(3)} ` +
      `is below ${limit.toFixed(3)}, the threshold calibrated for the chosen false-accept rate`;
  } else {
    $('answer').textContent = `→ ${result.label}`;
    $('detail').textContent = `open-set score ${result.open_set_score.toFixed(3)}` +
      (limit === null ? '' : ` (accepted: ≥ ${limit.toFixed(3)})`) +
      '. Probabilities are relative to the enrolled classes: they never say "none of these" ' +
      '(choose a false-accept rate under "say unknown at" for that).';
    const head = document.createElement('tr');
    head.innerHTML = '<th>class</th><th>probability</th>';
    rows.push(head);
    labels.forEach((label, i) => {
      const row = document.createElement('tr');
      for (const text of [label, result.probabilities[i].toFixed(3)]) {
        const cell = document.createElement('td'); cell.textContent = text; row.appendChild(cell);
      }
      rows.push(row);
    });
  }
  $('probs').replaceChildren(...rows);
}

window.anilEdge = {
  ready,
  // classes: {label: [image URLs]}, queries: [image URLs], reject: a calibrated false-accept rate
  // (0.01, 0.05) or null -> one result per query (label null: "unknown")
  async enrollAndPredict(classes, queries, reject = null) {
    const model = await ready;
    const enrolled = await Promise.all(Object.entries(classes).map(async ([label, urls]) =>
      ({ label, images: await Promise.all(urls.map((u) => decodeURL(u))) })));
    state.examples = new Map(enrolled.map((c) => [c.label, c.images]));
    listClasses();
    state.head = await enroll(model, enrolled);
    state.enrolledOnce = true;
    const images = await Promise.all(queries.map((u) => decodeURL(u)));
    const limit = client.rejectThreshold(model, reject);
    const results = await predict(model, state.head, images, limit);
    showOnPad(images[images.length - 1]); // the last query, on the pad
    show(results[results.length - 1], state.head.labels, limit);
    refresh();
    return results;
  },
};

clearPad();
ready.then((m) => {
  state.model = m;
  const meta = m.sidecar.metadata;
  say(`model: ${m.prep.channels}×${m.prep.input_size.join('×')} input, ${meta.embedding_dim}-d embeddings, ` +
      `${meta.adaptation.adaptation_steps} adaptation steps (${meta.adaptation.head_init})`);
  refresh();
}, (err) => { say('cannot load the model: ' + (err && err.message ? err.message : err), true); });
