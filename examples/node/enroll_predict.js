#!/usr/bin/env node
// Few-shot enrollment and prediction with an anil-edge export, from Node.js — no Python.
//
//   node enroll_predict.js MODEL_DIR CLASS_FOLDERS QUERY_IMAGES... [--reject RATE] [--int8] [--json [--embeddings]]
//
// MODEL_DIR holds what `anil-edge export` writes: model.json (the sidecar), model.pixels.onnx
// (the backbone taking raw uint8 pixels), model.head_adapt.onnx and model.head_classify.onnx
// (ANIL's inner loop). CLASS_FOLDERS is a folder with one sub-folder of images per class (PNG or
// JPEG; images in nested folders belong to their class folder); QUERY_IMAGES are image files or
// folders of them. Prints one line per query (JSON with --json; --embeddings adds each query's
// embedding, to compare clients).
//
// As careful as the Python runtime: every file it loads must match model.json's SHA-256; an image
// is refused (with its name, exit 2) when it cannot be decoded or declares more than MAX_PIXELS
// pixels — read from its header before anything is decoded; an empty query set is refused; a
// model exported with --fixed-batch N embeds N images per call.
// --int8 embeds with model.int8.pixels.onnx (written by `anil-edge export --int8`) and its own
// open-set thresholds.
//
// The steps every binding (Kotlin, Swift, C++, C#, JavaScript) follows:
//   1. decode each image to RGBA uint8 (1, h, w, 4), any size (the platform's decoder);
//      pixels = model.preprocess.onnx(rgba)                        -> (1, H, W, C) at the model's size
//   2. embeddings = model.pixels.onnx(pixels (N, H, W, C) uint8)                  -> (N, D)
//   3. weight, bias, class_means = model.head_adapt.onnx(embeddings, labels int64) -> enrolled head
//   4. probabilities, open_set_score = model.head_classify.onnx(queries, weight, bias, class_means)
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');
const { PNG } = require('pngjs');
const jpeg = require('jpeg-js');
const { orientation, upright } = require('./exif');

const MAX_PIXELS = 89478485; // Pillow's MAX_IMAGE_PIXELS: larger images are refused, not decoded
const IMAGE_SUFFIXES = ['.png', '.jpg', '.jpeg'];

function usage(message) {
  process.stderr.write(`enroll_predict: error: ${message}\n` +
    'usage: node enroll_predict.js MODEL_DIR CLASS_FOLDERS QUERY_IMAGES... [--reject RATE] [--int8] [--json [--embeddings]]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const args = { positional: [], json: false, reject: null, int8: false, embeddings: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--json') args.json = true;
    else if (argv[i] === '--embeddings') args.embeddings = true; // each JSON line also holds its query's embedding
    else if (argv[i] === '--int8') args.int8 = true;
    else if (argv[i] === '--reject') args.reject = Number(argv[++i]);
    else args.positional.push(argv[i]);
  }
  if (args.positional.length < 3) usage('expected MODEL_DIR, CLASS_FOLDERS and at least one query');
  return args;
}

function readSidecar(modelDir, backboneKind) {
  const file = path.join(modelDir, 'model.json');
  const interrupted = fs.existsSync(modelDir) && fs.readdirSync(modelDir).some((name) =>
    name.startsWith('.anil-edge-export-') && fs.existsSync(path.join(modelDir, name, 'COMMIT.json')));
  if (interrupted) {  // the files are half old, half new: anil_edge.file_set completes the commit
    usage(`an export into ${modelDir} was interrupted while it replaced the files: run ` +
          `\`anil-edge info ${path.join(modelDir, 'model.onnx')}\` once to complete it`);
  }
  if (!fs.existsSync(file)) usage(`${file} not found: export the model with anil-edge export`);
  let sidecar;
  try { sidecar = JSON.parse(fs.readFileSync(file, 'utf8')); } catch (err) { usage(`${file}: not readable JSON (${err.message})`); }
  if (sidecar.format !== 'anil-edge-sidecar') usage(`${file} is not an anil-edge sidecar`);
  for (const kind of [backboneKind, 'head_adapt', 'head_classify', 'preprocess']) {
    const hint = kind === 'backbone_int8_pixels' ? 'export with --int8 (and without --no-pixel-input)'
      : kind === 'preprocess' ? 'export it again with anil-edge >= 0.2.0 (a model that resizes with "nearest" has none)'
      : 'export without --no-pixel-input';
    if (!sidecar.files[kind]) usage(`${file} lists no ${kind} file: ${hint}`);
  }
  return sidecar;
}

const isImage = (name) => !name.startsWith('.') && IMAGE_SUFFIXES.includes(path.extname(name).toLowerCase());
const sorted = (names) => names.slice().sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

// Every image file under dir (recursively, sorted, hidden entries skipped).
function imagesUnder(dir) {
  const files = [];
  for (const name of sorted(fs.readdirSync(dir))) {
    if (name.startsWith('.')) continue;
    const full = path.join(dir, name);
    if (fs.statSync(full).isDirectory()) files.push(...imagesUnder(full));
    else if (isImage(name)) files.push(full);
  }
  return files;
}

function classFolders(root) {
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) usage(`${root}: no such folder`);
  const classes = [];
  for (const name of sorted(fs.readdirSync(root))) {
    const dir = path.join(root, name);
    if (name.startsWith('.') || !fs.statSync(dir).isDirectory()) continue;
    const files = imagesUnder(dir);
    if (files.length === 0) usage(`${dir}: a class folder with no PNG or JPEG images`);
    classes.push({ label: name.normalize('NFC'), files });
  }
  if (classes.length === 0) usage(`${root}: no class folders`);
  return classes;
}

function queryFiles(paths) {
  const files = [];
  for (const p of paths) {
    if (!fs.existsSync(p)) usage(`${p}: no such file or folder`);
    if (fs.statSync(p).isDirectory()) files.push(...imagesUnder(p));
    else files.push(p);
  }
  if (files.length === 0) usage(`no query images (PNG or JPEG) in ${paths.join(', ')}`);
  return files;
}

// Width and height from a PNG's IHDR or a JPEG's SOF marker, before any pixel is decoded.
function declaredSize(bytes) {
  if (bytes.length >= 24 && bytes.readUInt32BE(0) === 0x89504e47) return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
  if (bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8) {
    for (let i = 2; i + 9 < bytes.length;) {
      if (bytes[i] !== 0xff) { i++; continue; }
      const marker = bytes[i + 1];
      if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
        return [bytes.readUInt16BE(i + 7), bytes.readUInt16BE(i + 5)];
      }
      i += 2 + bytes.readUInt16BE(i + 2);
    }
  }
  return null;
}

// RGBA pixels of a PNG or JPEG file, turned upright by its EXIF orientation; refuses what it cannot read, naming the file.
function readImage(file) {
  let bytes;
  try { bytes = fs.readFileSync(file); } catch (err) { usage(`${file}: cannot read (${err.code || err.message})`); }
  const size = declaredSize(bytes);
  if (size === null) usage(`${file}: not a PNG or JPEG image`);
  if (size[0] * size[1] > MAX_PIXELS) {
    usage(`${file}: declares ${size[0]}x${size[1]} pixels, more than the ${MAX_PIXELS} this client decodes`);
  }
  try {
    const image = bytes[0] === 0x89 ? PNG.sync.read(bytes)
      : jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: MAX_PIXELS / 1e6 });
    return upright(image, orientation(bytes)); // EXIF orientation, as the Python runtime applies it
  } catch (err) {
    usage(`${file}: truncated or corrupted image (${err.message})`);
  }
  return null;
}

// One image as uint8 (H, W, C) at the model's size, through model.preprocess.onnx: the graph
// composites alpha on white, converts the colour, resizes and crops exactly as the Python runtime
// and training decode (Pillow's arithmetic, bit for bit), so no client re-implements it.
async function decode(preprocess, file) {
  const image = readImage(file);
  const rgba = new ort.Tensor('uint8', Uint8Array.from(image.data), [1, image.height, image.width, 4]);
  return (await preprocess.run({ rgba })).pixels.data;
}

// Embeddings (N, D) of the files, `batch` images per call (a fixed-batch model's N, else all).
async function embed(session, preprocess, files, prep, batch) {
  const [height, width] = prep.input_size;
  const size = height * width * prep.channels;
  const step = batch || files.length;
  const parts = [];
  for (let start = 0; start < files.length; start += step) {
    const chunk = files.slice(start, start + step);
    const pixels = new Uint8Array(step * size); // a short last chunk is padded, its rows dropped
    for (const [i, file] of chunk.entries()) pixels.set(await decode(preprocess, file), i * size);
    const output = await session.run({ pixels: new ort.Tensor('uint8', pixels, [step, height, width, prep.channels]) });
    parts.push(output.embeddings.data.slice(0, chunk.length * output.embeddings.dims[1]));
  }
  const dim = parts[0].length / Math.min(step, files.length);
  const data = new Float32Array(files.length * dim);
  let offset = 0;
  for (const part of parts) { data.set(part, offset); offset += part.length; }
  return new ort.Tensor('float32', data, [files.length, dim]);
}

// The file model.json lists for `kind`, read once and checked against its SHA-256.
function verifiedModel(modelDir, sidecar, kind) {
  const entry = sidecar.files[kind];
  const file = path.join(modelDir, entry.path);
  let bytes;
  try { bytes = fs.readFileSync(file); } catch (err) { usage(`${file}: cannot read (${err.code || err.message})`); }
  const digest = crypto.createHash('sha256').update(bytes).digest('hex');
  if (digest !== entry.sha256) {
    usage(`${file} is not the file model.json lists (SHA-256 ${digest.slice(0, 12)}…, expected ` +
      `${entry.sha256.slice(0, 12)}…): a file of another export? export the model again`);
  }
  return bytes;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const [modelDir, classRoot, ...queryPaths] = args.positional;
  const backboneKind = args.int8 ? 'backbone_int8_pixels' : 'backbone_pixels';
  const sidecar = readSidecar(modelDir, backboneKind);
  const meta = sidecar.metadata;
  const prep = meta.preprocessing;
  const open = (kind) => ort.InferenceSession.create(verifiedModel(modelDir, sidecar, kind));
  const [backbone, adapt, classify, preprocess] = await Promise.all(
    [backboneKind, 'head_adapt', 'head_classify', 'preprocess'].map(open));
  const declared = sidecar.files[backboneKind].inputs.pixels[1][0];
  const batch = Number.isInteger(declared) ? declared : null; // --fixed-batch exports: N images per call
  let threshold = null;
  if (args.reject !== null) {
    const openSet = args.int8 ? sidecar.files[backboneKind].open_set : meta.open_set;
    const table = openSet && openSet.thresholds;
    if (!table || table[String(args.reject)] === undefined) usage(`--reject ${args.reject}: the model is calibrated for ${table ? Object.keys(table) : 'no'} rates`);
    threshold = table[String(args.reject)];
  }

  const started = process.hrtime.bigint();
  const classes = classFolders(classRoot);
  const files = queryFiles(queryPaths); // before any work: an empty query set is refused at once
  const supportFiles = classes.flatMap((c) => c.files);
  const labels = BigInt64Array.from(classes.flatMap((c, k) => c.files.map(() => BigInt(k))));
  const support = await embed(backbone, preprocess, supportFiles, prep, batch);
  const head = await adapt.run({ embeddings: support, labels: new ort.Tensor('int64', labels, [labels.length]) });
  const enrolled = process.hrtime.bigint();

  const queries = await embed(backbone, preprocess, files, prep, batch);
  const result = await classify.run({ queries, weight: head.weight, bias: head.bias, class_means: head.class_means });
  const done = process.hrtime.bigint();

  const C = classes.length;
  const P = result.probabilities.data, S = result.open_set_score.data;
  files.forEach((file, i) => {
    const row = Array.from(P.slice(i * C, (i + 1) * C));
    const best = row.indexOf(Math.max(...row));
    const known = threshold === null || S[i] >= threshold;
    const line = { image: file, label: known ? classes[best].label : null, best_label: classes[best].label,
      probability: row[best], probabilities: row, open_set_score: S[i] };
    if (args.embeddings) line.embedding = Array.from(queries.data.slice(i * queries.dims[1], (i + 1) * queries.dims[1]));
    process.stdout.write(args.json ? JSON.stringify(line) + '\n'
      : `${file}  ${line.label === null ? 'unknown' : line.label}  ${row[best].toFixed(3)}  ${S[i].toFixed(3)}\n`);
  });
  const ms = (a, b) => Number(b - a) / 1e6;
  process.stderr.write(`enrolled ${C} classes from ${supportFiles.length} images in ${ms(started, enrolled).toFixed(1)} ms; ` +
    `predicted ${files.length} images in ${ms(enrolled, done).toFixed(1)} ms\n`);
}

main().catch((err) => { process.stderr.write(`enroll_predict: error: ${err.message}\n`); process.exit(1); });
