// The anil-edge client steps, shared by the Node client (examples/node) and the browser page:
// one ES module, no build step. Each caller passes its onnxruntime binding (`ort`) and decodes
// images its own way, to RGBA {width, height, data}.
//
// The contract (file kinds, input and output names) is anil_edge/runtime/export_files.py's;
// tests/examples/test_js_client.py checks that the two say the same.

export const ADAPT_INPUTS = ['embeddings', 'labels'];
export const ADAPT_OUTPUTS = ['weight', 'bias', 'class_means'];
export const CLASSIFY_INPUTS = ['queries', 'weight', 'bias', 'class_means'];
export const CLASSIFY_OUTPUTS = ['logits', 'probabilities', 'open_set_score'];
export const PIXELS = 'pixels';
export const RGBA = 'rgba';
export const EMBEDDINGS = 'embeddings';

// CPU classes and the INT8 rules of anil_edge/cpu_features.py and anil_edge/runtime/int8_variants.py
// (tests/examples/test_js_client.py checks that both say the same).
export const CPU_CLASSES = ['x86-amx', 'x86-vnni', 'x86-avx2', 'arm64-dot', 'arm64', 'other'];
export const X86_MACHINES = ['x86_64', 'amd64', 'x64'];
export const ARM64_MACHINES = ['aarch64', 'arm64'];
export const DOT_PRODUCT_CLASSES = ['x86-amx', 'x86-vnni', 'arm64-dot'];
export const WIDENING_CLASSES = ['x86-amx', 'x86-vnni', 'arm64-dot', 'arm64'];
export const PRECISIONS = ['auto', 'fp32', 'int8'];

// The class of a CPU from its machine name (Node's process.arch, or Python's platform.machine())
// and its feature flags (Linux's /proc/cpuinfo; none known: x86 counts as x86-avx2, the worst case).
export function cpuClass(machine, flags) {
  const has = (...names) => names.some((n) => flags.includes(n));
  const m = machine.toLowerCase();
  if (X86_MACHINES.includes(m)) return has('amx_int8') ? 'x86-amx' : has('avx512_vnni', 'avx_vnni') ? 'x86-vnni' : 'x86-avx2';
  if (ARM64_MACHINES.includes(m)) return has('asimddp', 'i8mm') ? 'arm64-dot' : 'arm64';
  return 'other';
}

// Which pixel backbone to run for `precision` on CPU class `cls`: {kind, precision, reason}.
// 'fp32': model.pixels.onnx; 'int8': model.int8.pixels.onnx, refused where its kernels can saturate;
// 'auto': the INT8 model where model.json says it is exact and faster on this class, else FP32.
export function chooseBackbone(sidecar, precision, cls) {
  if (!PRECISIONS.includes(precision)) throw new Error(`precision must be one of ${PRECISIONS.join(', ')}, found ${precision}`);
  const entry = sidecar.files.backbone_int8_pixels;
  if (precision === 'fp32') return { kind: 'backbone_pixels', precision: 'fp32', reason: 'asked for' };
  if (!entry) {
    if (precision === 'int8') throw new Error('model.json lists no backbone_int8_pixels file: export with --int8');
    return { kind: 'backbone_pixels', precision: 'fp32', reason: 'no INT8 model in model.json' };
  }
  const q = entry.quantization || {};
  const exact = (q.exact_on || (q.avx2_saturation_free ? CPU_CLASSES : WIDENING_CLASSES)).includes(cls);
  const fast = (q.faster_on || (q.weights !== 'uint8' ? DOT_PRODUCT_CLASSES : ['arm64-dot'])).includes(cls);
  if (!exact) {
    const why = `${entry.path} (format ${q.format}) is not exact on this CPU (${cls}): its int8 weights can saturate its kernels`;
    if (precision === 'int8') throw new Error(`${why}; use --precision auto or fp32, or export with --int8-format auto`);
    return { kind: 'backbone_pixels', precision: 'fp32', reason: why };
  }
  const verdict = `${entry.path} (format ${q.format}) is exact here and ${fast ? '' : 'not '}faster than FP32`;
  if (precision === 'int8' || fast) return { kind: 'backbone_int8_pixels', precision: 'int8', reason: verdict };
  return { kind: 'backbone_pixels', precision: 'fp32', reason: verdict };
}

// SHA-256 of bytes as hex (WebCrypto: Node >= 19 and pages served over https or localhost), or
// null where the page has none.
export async function sha256Hex(bytes) {
  const subtle = globalThis.crypto && globalThis.crypto.subtle;
  if (!subtle) return null;
  const digest = new Uint8Array(await subtle.digest('SHA-256', bytes));
  return Array.from(digest).map((x) => x.toString(16).padStart(2, '0')).join('');
}

// The bytes `read(path)` gives for model.json's entry of `kind`, refused unless they are the file
// it lists (a file of another export), naming it as `name(path)` does.
export async function verifiedBytes(sidecar, kind, read, name = (p) => p) {
  const entry = sidecar.files[kind];
  const bytes = await read(entry.path);
  const digest = await sha256Hex(bytes);
  if (digest !== null && digest !== entry.sha256) {
    throw new Error(`${name(entry.path)} is not the file model.json lists (SHA-256 ${digest.slice(0, 12)}…, expected ` +
      `${entry.sha256.slice(0, 12)}…): a file of another export? export the model again`);
  }
  return bytes;
}

// What to do when model.json lacks a file the client needs.
const HINTS = {
  backbone_int8_pixels: 'export with --int8 (and without --no-pixel-input)',
  preprocess: 'export it again with anil-edge >= 0.2.0 (a model that resizes with "nearest" has none)',
  other: 'export without --no-pixel-input',
};

// Sessions for the backbone `backboneKind` (backbone_pixels or backbone_int8_pixels), the head
// graphs and the preprocessing graph, every file checked against model.json. `read(path)` gives a
// listed file's bytes, `name(path)` how errors call it.
export async function openModel(ort, sidecar, { read, name = (p) => p, backboneKind = 'backbone_pixels', options = {} }) {
  const kinds = [backboneKind, 'head_adapt', 'head_classify', 'preprocess'];
  const missing = kinds.filter((kind) => !sidecar.files[kind]);
  if (missing.length) throw new Error(missing.map((kind) => `model.json lists no ${kind} file: ${HINTS[kind] || HINTS.other}`).join('; '));
  const [backbone, adapt, classify, preprocess] = await Promise.all(kinds.map(async (kind) =>
    ort.InferenceSession.create(await verifiedBytes(sidecar, kind, read, name), options)));
  const declared = sidecar.files[backboneKind].inputs[PIXELS][1][0];
  return { ort, sidecar, prep: sidecar.metadata.preprocessing, backbone, adapt, classify, preprocess,
    batch: Number.isInteger(declared) ? declared : null, openSet: backboneKind === 'backbone_int8_pixels'
      ? sidecar.files[backboneKind].open_set : sidecar.metadata.open_set };
}

// The open-set threshold for a false-accept rate the model was calibrated for ("unknown" below it).
export function rejectThreshold(model, rate) {
  if (rate === null || rate === undefined) return null;
  const table = model.openSet && model.openSet.thresholds;
  if (!table || table[String(rate)] === undefined) {
    throw new Error(`reject ${rate}: the model is calibrated for ${table ? Object.keys(table).join(', ') : 'no'} rates`);
  }
  return table[String(rate)];
}

// One decoded RGBA image {width, height, data} as uint8 (H, W, C) at the model's size, through
// model.preprocess.onnx (the runtime's decoding, bit for bit).
export async function toPixels(model, image) {
  const rgba = new model.ort.Tensor('uint8', Uint8Array.from(image.data), [1, image.height, image.width, 4]);
  return (await model.preprocess.run({ [RGBA]: rgba }))[PIXELS].data;
}

// Embeddings (N, D) of RGBA images (or of {pixels} already brought to the model's size by
// toPixels), `model.batch` per call for a fixed-batch export, else all at once.
export async function embed(model, images) {
  const [h, w] = model.prep.input_size, c = model.prep.channels, size = h * w * c;
  const step = model.batch || images.length;
  const parts = [];
  for (let start = 0; start < images.length; start += step) {
    const chunk = images.slice(start, start + step);
    const pixels = new Uint8Array(step * size); // a short last chunk is padded, its rows dropped
    for (const [i, image] of chunk.entries()) pixels.set(image.pixels || await toPixels(model, image), i * size);
    const out = await model.backbone.run({ [PIXELS]: new model.ort.Tensor('uint8', pixels, [step, h, w, c]) });
    parts.push(out[EMBEDDINGS].data.slice(0, chunk.length * out[EMBEDDINGS].dims[1]));
  }
  const dim = parts[0].length / Math.min(step, images.length);
  const data = new Float32Array(images.length * dim);
  let offset = 0;
  for (const part of parts) { data.set(part, offset); offset += part.length; }
  return new model.ort.Tensor('float32', data, [images.length, dim]);
}

// The adapted head for classes [{label, images}]: ANIL's inner loop, model.head_adapt.onnx.
export async function enroll(model, classes) {
  const images = classes.flatMap((c) => c.images);
  const labels = BigInt64Array.from(classes.flatMap((c, k) => c.images.map(() => BigInt(k))));
  const support = await embed(model, images);
  const head = await model.adapt.run({ [ADAPT_INPUTS[0]]: support,
    [ADAPT_INPUTS[1]]: new model.ort.Tensor('int64', labels, [labels.length]) });
  return { labels: classes.map((c) => c.label), tensors: ADAPT_OUTPUTS.map((name) => head[name]) };
}

// One result per query: label (null: "unknown", below `threshold`), best_label, probability,
// probabilities, open_set_score, embedding.
export async function predict(model, head, images, threshold = null) {
  const queries = await embed(model, images);
  const feeds = Object.fromEntries(CLASSIFY_INPUTS.map((name, i) => [name, i === 0 ? queries : head.tensors[i - 1]]));
  const r = await model.classify.run(feeds);
  const C = head.labels.length, D = queries.dims[1];
  return images.map((_, i) => {
    const probabilities = Array.from(r[CLASSIFY_OUTPUTS[1]].data.slice(i * C, (i + 1) * C));
    const best = probabilities.indexOf(Math.max(...probabilities));
    const score = r[CLASSIFY_OUTPUTS[2]].data[i];
    return { label: threshold === null || score >= threshold ? head.labels[best] : null, best_label: head.labels[best],
      probability: probabilities[best], probabilities, open_set_score: score,
      embedding: Array.from(queries.data.slice(i * D, (i + 1) * D)) };
  });
}
