#!/usr/bin/env node
// Few-shot enrollment and prediction with an anil-edge export, from Node.js — no Python.
//
//   node enroll_predict.js MODEL_DIR CLASS_FOLDERS QUERY_IMAGES... [--reject RATE] [--int8] [--json]
//
// MODEL_DIR holds what `anil-edge export` writes: model.json (the sidecar), model.pixels.onnx
// (the backbone taking raw uint8 pixels), model.head_adapt.onnx and model.head_classify.onnx
// (ANIL's inner loop). CLASS_FOLDERS is a folder with one sub-folder of PNG images per class;
// QUERY_IMAGES are PNG files or folders of them. Prints one line per query (JSON with --json).
// --int8 embeds with model.int8.pixels.onnx (written by `anil-edge export --int8`) and its own
// open-set thresholds.
//
// The steps every binding (Kotlin, Swift, C++, C#, JavaScript) follows:
//   1. decode each image to uint8 (H, W, C) at the model's size (sidecar: metadata.preprocessing);
//   2. embeddings = model.pixels.onnx(pixels (N, H, W, C) uint8)                  -> (N, D)
//   3. weight, bias, class_means = model.head_adapt.onnx(embeddings, labels int64) -> enrolled head
//   4. probabilities, open_set_score = model.head_classify.onnx(queries, weight, bias, class_means)
'use strict';

const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');
const { PNG } = require('pngjs');

function usage(message) {
  process.stderr.write(`enroll_predict: error: ${message}\n` +
    'usage: node enroll_predict.js MODEL_DIR CLASS_FOLDERS QUERY_IMAGES... [--reject RATE] [--int8] [--json]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const args = { positional: [], json: false, reject: null, int8: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--json') args.json = true;
    else if (argv[i] === '--int8') args.int8 = true;
    else if (argv[i] === '--reject') args.reject = Number(argv[++i]);
    else args.positional.push(argv[i]);
  }
  if (args.positional.length < 3) usage('expected MODEL_DIR, CLASS_FOLDERS and at least one query');
  return args;
}

function readSidecar(modelDir, backboneKind) {
  const file = path.join(modelDir, 'model.json');
  if (!fs.existsSync(file)) usage(`${file} not found: export the model with anil-edge export`);
  const sidecar = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (sidecar.format !== 'anil-edge-sidecar') usage(`${file} is not an anil-edge sidecar`);
  for (const kind of [backboneKind, 'head_adapt', 'head_classify']) {
    const hint = kind === 'backbone_int8_pixels' ? 'export with --int8 (and without --no-pixel-input)'
      : 'export without --no-pixel-input';
    if (!sidecar.files[kind]) usage(`${file} lists no ${kind} file: ${hint}`);
  }
  return sidecar;
}

const isPng = (name) => name.toLowerCase().endsWith('.png') && !name.startsWith('.');
const sorted = (names) => names.slice().sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

function classFolders(root) {
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) usage(`${root}: no such folder`);
  const classes = [];
  for (const name of sorted(fs.readdirSync(root))) {
    const dir = path.join(root, name);
    if (name.startsWith('.') || !fs.statSync(dir).isDirectory()) continue;
    const files = sorted(fs.readdirSync(dir).filter(isPng)).map((f) => path.join(dir, f));
    if (files.length === 0) usage(`${dir}: a class folder with no PNG images`);
    classes.push({ label: name, files });
  }
  if (classes.length === 0) usage(`${root}: no class folders`);
  return classes;
}

function queryFiles(paths) {
  const files = [];
  for (const p of paths) {
    if (!fs.existsSync(p)) usage(`${p}: no such file or folder`);
    if (fs.statSync(p).isDirectory()) {
      const walk = (dir) => {
        for (const name of sorted(fs.readdirSync(dir))) {
          const full = path.join(dir, name);
          if (fs.statSync(full).isDirectory()) walk(full);
          else if (isPng(name)) files.push(full);
        }
      };
      walk(p);
    } else files.push(p);
  }
  return files;
}

// One PNG as uint8 (H, W, C) at the model's size: alpha composited on white, grayscale by
// ITU-R 601 luma (as PIL's convert("L")), and — only when the file has another size — a
// bilinear resize (squash) or an aspect-preserving centre crop, as the metadata says.
function decode(file, prep) {
  const png = PNG.sync.read(fs.readFileSync(file));
  const [height, width] = prep.input_size;
  const channels = prep.channels;
  const src = new Float32Array(png.width * png.height * channels);
  for (let i = 0; i < png.width * png.height; i++) {
    const a = png.data[4 * i + 3] / 255;
    const rgb = [0, 1, 2].map((k) => png.data[4 * i + k] * a + 255 * (1 - a));
    if (channels === 1) src[i] = (Math.round(rgb[0]) * 19595 + Math.round(rgb[1]) * 38470 + Math.round(rgb[2]) * 7471 + 0x8000) >> 16;
    else for (let k = 0; k < 3; k++) src[3 * i + k] = Math.round(rgb[k]);
  }
  const out = new Uint8Array(height * width * channels);
  if (png.width === width && png.height === height) {
    for (let i = 0; i < out.length; i++) out[i] = src[i];
    return out;
  }
  let scaleX = width / png.width, scaleY = height / png.height, offX = 0, offY = 0;
  if (prep.crop === 'center') {
    const s = Math.max(scaleX, scaleY) / prep.crop_pct;
    scaleX = scaleY = s;
    offX = (Math.round(png.width * s) - width) / 2;
    offY = (Math.round(png.height * s) - height) / 2;
  }
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const sx = Math.min(Math.max((x + offX + 0.5) / scaleX - 0.5, 0), png.width - 1);
      const sy = Math.min(Math.max((y + offY + 0.5) / scaleY - 0.5, 0), png.height - 1);
      const x0 = Math.floor(sx), y0 = Math.floor(sy);
      const x1 = Math.min(x0 + 1, png.width - 1), y1 = Math.min(y0 + 1, png.height - 1);
      const fx = sx - x0, fy = sy - y0;
      for (let k = 0; k < channels; k++) {
        const at = (xx, yy) => src[(yy * png.width + xx) * channels + k];
        const v = (at(x0, y0) * (1 - fx) + at(x1, y0) * fx) * (1 - fy) + (at(x0, y1) * (1 - fx) + at(x1, y1) * fx) * fy;
        out[(y * width + x) * channels + k] = Math.round(v);
      }
    }
  }
  return out;
}

async function embed(session, files, prep) {
  const [height, width] = prep.input_size;
  const size = height * width * prep.channels;
  const pixels = new Uint8Array(files.length * size);
  files.forEach((file, i) => pixels.set(decode(file, prep), i * size));
  const input = new ort.Tensor('uint8', pixels, [files.length, height, width, prep.channels]);
  const output = await session.run({ pixels: input });
  return output.embeddings;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const [modelDir, classRoot, ...queryPaths] = args.positional;
  const backboneKind = args.int8 ? 'backbone_int8_pixels' : 'backbone_pixels';
  const sidecar = readSidecar(modelDir, backboneKind);
  const meta = sidecar.metadata;
  const prep = meta.preprocessing;
  const open = (kind) => ort.InferenceSession.create(path.join(modelDir, sidecar.files[kind].path));
  const [backbone, adapt, classify] = await Promise.all([backboneKind, 'head_adapt', 'head_classify'].map(open));
  let threshold = null;
  if (args.reject !== null) {
    const openSet = args.int8 ? sidecar.files[backboneKind].open_set : meta.open_set;
    const table = openSet && openSet.thresholds;
    if (!table || table[String(args.reject)] === undefined) usage(`--reject ${args.reject}: the model is calibrated for ${table ? Object.keys(table) : 'no'} rates`);
    threshold = table[String(args.reject)];
  }

  const started = process.hrtime.bigint();
  const classes = classFolders(classRoot);
  const supportFiles = classes.flatMap((c) => c.files);
  const labels = BigInt64Array.from(classes.flatMap((c, k) => c.files.map(() => BigInt(k))));
  const support = await embed(backbone, supportFiles, prep);
  const head = await adapt.run({ embeddings: support, labels: new ort.Tensor('int64', labels, [labels.length]) });
  const enrolled = process.hrtime.bigint();

  const files = queryFiles(queryPaths);
  const queries = await embed(backbone, files, prep);
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
    process.stdout.write(args.json ? JSON.stringify(line) + '\n'
      : `${file}  ${line.label === null ? 'unknown' : line.label}  ${row[best].toFixed(3)}  ${S[i].toFixed(3)}\n`);
  });
  const ms = (a, b) => Number(b - a) / 1e6;
  process.stderr.write(`enrolled ${C} classes from ${supportFiles.length} images in ${ms(started, enrolled).toFixed(1)} ms; ` +
    `predicted ${files.length} images in ${ms(enrolled, done).toFixed(1)} ms\n`);
}

main().catch((err) => { process.stderr.write(`enroll_predict: error: ${err.message}\n`); process.exit(1); });
