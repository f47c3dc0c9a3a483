#!/usr/bin/env node
// Few-shot enrollment and prediction with an anil-edge export, from Node.js — no Python.
//
//   node enroll_predict.js MODEL_DIR CLASS_FOLDERS QUERY_IMAGES... [--reject RATE] [--precision auto|fp32|int8] [--json [--embeddings]]
//
// MODEL_DIR holds what `anil-edge export` writes: model.json (the sidecar), model.preprocess.onnx
// (decoded RGBA of any size -> the model's pixels, as training decoded), model.pixels.onnx (the
// backbone taking those uint8 pixels), model.head_adapt.onnx and model.head_classify.onnx
// (ANIL's inner loop). The steps themselves are ../web/anil_edge_client.mjs, shared with the
// browser page; this file reads the files and decodes the images. CLASS_FOLDERS is a folder with one sub-folder of images per class (PNG,
// JPEG, BMP, GIF, WebP, TIFF, as the Python runtime reads; images in nested folders belong to their class folder); QUERY_IMAGES are image files or
// folders of them. Prints one line per query (JSON with --json; --embeddings adds each query's
// embedding, to compare clients).
//
// As careful as the Python runtime: every file it loads must match model.json's SHA-256; an image
// is refused (with its name, exit 2) when it cannot be decoded or declares more than MAX_PIXELS
// (4096 x 4096) pixels — read from its header before anything is decoded; an empty query set is refused; a
// model exported with --fixed-batch N embeds N images per call.
// --precision int8 (or --int8) embeds with model.int8.pixels.onnx (written by `anil-edge export
// --int8`) and its own open-set thresholds; --precision auto does so where model.json says that model
// is exact and faster on this CPU's class (its flags from /proc/cpuinfo), as the Python runtime's
// precision='auto' does; the default, fp32, runs model.pixels.onnx. A line on stderr says which and why.
//
// The steps every binding (Kotlin, Swift, C++, C#, JavaScript) follows:
//   1. decode each image to RGBA uint8 (1, h, w, 4), any size (the platform's decoder);
//      pixels = model.preprocess.onnx(rgba)                        -> (1, H, W, C) at the model's size
//   2. embeddings = model.pixels.onnx(pixels (N, H, W, C) uint8)                  -> (N, D)
//   3. weight, bias, class_means = model.head_adapt.onnx(embeddings, labels int64) -> enrolled head
//   4. probabilities, open_set_score = model.head_classify.onnx(queries, weight, bias, class_means)
'use strict';

const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');
const { PNG } = require('pngjs');
const sharp = require('sharp');
const { orientation, upright } = require('./exif');

// model.preprocess.onnx resizes in float64 at the image's own size: about 90 bytes per decoded
// pixel (measured: 1.6 GB resident at 4096 x 4096, 3.0 GB at 6000 x 6000). This client therefore
// decodes at most 4096 x 4096 pixels, read from the header before anything is decoded, and refuses
// a larger image in one line (the Python runtime resizes with Pillow and takes up to Pillow's
// 89.5 MP). Its sessions run without onnxruntime's memory arena, which kept the peak besides.
const MAX_PIXELS = 4096 * 4096;
// What the Python runtime reads (anil_edge.runtime.preprocess.IMAGE_SUFFIXES): PNG through pngjs, BMP
// here, JPEG, WebP, GIF (its first frame) and TIFF through sharp.
const IMAGE_SUFFIXES = ['.png', '.jpg', '.jpeg', '.bmp', '.gif', '.webp', '.tif', '.tiff'];

function usage(message) {
  process.stderr.write(`enroll_predict: error: ${message}\n` +
    'usage: node enroll_predict.js MODEL_DIR CLASS_FOLDERS QUERY_IMAGES... [--reject RATE] [--precision auto|fp32|int8] [--json [--embeddings]]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const args = { positional: [], json: false, reject: null, precision: 'fp32', embeddings: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--json') args.json = true;
    else if (argv[i] === '--embeddings') args.embeddings = true; // each JSON line also holds its query's embedding
    else if (argv[i] === '--int8') args.precision = 'int8';
    else if (argv[i] === '--precision') args.precision = argv[++i];
    else if (argv[i] === '--reject') args.reject = Number(argv[++i]);
    else args.positional.push(argv[i]);
  }
  if (args.positional.length < 3) usage('expected MODEL_DIR, CLASS_FOLDERS and at least one query');
  return args;
}

// This CPU's feature flags, as Linux lists them (none elsewhere: the INT8 rules then assume the worst).
function cpuFlags() {
  try {
    const line = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => /^(flags|features)\s*:/i.test(l));
    return line ? line.split(':')[1].trim().split(/\s+/) : [];
  } catch (err) {
    return [];
  }
}

// MODEL_DIR, or a model file in it (model.onnx, as the Python commands take): its folder.
function modelFolder(given) {
  if (!fs.existsSync(given)) usage(`${given} not found: give the folder anil-edge export wrote (or its model.onnx)`);
  if (fs.statSync(given).isDirectory()) return given;
  if (given.toLowerCase().endsWith('.onnx')) return path.dirname(given);
  usage(`${given} is a file, not a model folder: give the folder anil-edge export wrote (or its model.onnx)`);
}

function readSidecar(modelDir) {
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
  return sidecar; // the files it must list: the shared client's openModel checks them
}

const isImage = (name) => !name.startsWith('.') && IMAGE_SUFFIXES.includes(path.extname(name).toLowerCase());
const sorted = (names) => names.slice().sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

// The walking rule both clients share (anil_edge.runtime.folders): a folder named on the command
// line, or a class folder in CLASS_FOLDERS, is followed even when it is a symlink; inside it,
// entries whose names start with '.' are skipped, symlinked files are read, symlinked folders are
// not entered (so no loop is ever walked), and names are visited in sorted order.
function imagesUnder(dir) {
  const files = [];
  for (const name of sorted(fs.readdirSync(dir))) {
    if (name.startsWith('.')) continue;
    const full = path.join(dir, name);
    const link = fs.lstatSync(full);
    if (link.isDirectory()) files.push(...imagesUnder(full));
    else if (isImage(name) && isFile(full)) files.push(full);
  }
  return files;
}

function isFile(file) { // follows a symlink; a broken one is no file
  try { return fs.statSync(file).isFile(); } catch (err) { return false; }
}

function classFolders(root) {
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) usage(`${root}: no such folder`);
  const classes = [];
  for (const name of sorted(fs.readdirSync(root))) {
    const dir = path.join(root, name);
    if (name.startsWith('.') || !fs.statSync(dir).isDirectory()) continue;
    const files = imagesUnder(dir);
    if (files.length === 0) usage(`${dir}: a class folder with no images (${IMAGE_SUFFIXES.join(', ')})`);
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
  if (files.length === 0) usage(`no query images (${IMAGE_SUFFIXES.join(', ')}) in ${paths.join(', ')}`);
  return files;
}

// Width and height from a PNG's IHDR, a JPEG's SOF marker or a BMP's header, before any pixel is
// decoded (WebP, GIF and TIFF: sharp's header read, with the same limit).
function declaredSize(bytes) {
  if (bytes.length >= 24 && bytes.readUInt32BE(0) === 0x89504e47) return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
  if (bytes.length >= 26 && bytes.toString('latin1', 0, 2) === 'BM') return [bytes.readInt32LE(18), Math.abs(bytes.readInt32LE(22))];
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

const SHARP_FORMATS = ['jpeg', 'webp', 'gif', 'tiff'];

// RGBA pixels of an image file, turned upright by its EXIF orientation; refuses what it cannot
// read, naming the file.
async function readImage(file) {
  let bytes;
  try { bytes = fs.readFileSync(file); } catch (err) { usage(`${file}: cannot read (${err.code || err.message})`); }
  const size = declaredSize(bytes) || await sharpSize(bytes);
  if (size === null) usage(`${file}: not an image this client reads (${IMAGE_SUFFIXES.join(', ')})`);
  if (size[0] * size[1] > MAX_PIXELS) {
    usage(`${file}: declares ${size[0]}x${size[1]} pixels, more than the ${MAX_PIXELS} (4096 x 4096) this client ` +
          'decodes: downscale it first (the Python runtime takes up to 89.5 MP)');
  }
  let image;
  try {
    if (bytes[0] === 0x89) image = PNG.sync.read(bytes);
    else if (bytes.toString('latin1', 0, 2) === 'BM') image = decodeBmp(bytes);
    else image = await decodeWithSharp(bytes);
  } catch (err) {
    usage(`${file}: truncated, corrupted or unsupported image (${err.message.split('\n')[0]})`);
  }
  return upright(image, image.orientation || orientation(bytes)); // EXIF orientation, as the Python runtime applies it
}

// The size sharp reads from a WebP, GIF or TIFF header (no pixel decoded); null for anything else.
async function sharpSize(bytes) {
  try {
    const meta = await sharp(bytes, { limitInputPixels: false }).metadata();
    return SHARP_FORMATS.includes(meta.format) && meta.format !== 'jpeg' ? [meta.width, meta.pageHeight || meta.height] : null;
  } catch (err) {
    return null;
  }
}

// JPEG, WebP, GIF and TIFF through sharp (libvips on libjpeg-turbo, libwebp, libtiff: the decoders
// Pillow uses, so the pixels are Python's bit for bit). jpeg-js, a pure-JS JPEG decoder, moved a
// photo's pixels by 2.8 levels on average (up to 57) and its EfficientNet-Lite0 embedding by a
// fifth of its scale. sharp leaves the orientation alone (upright() applies it, as for PNG); a GIF
// gives its first frame, as Pillow opens it.
async function decodeWithSharp(bytes) {
  const decoder = sharp(bytes, { limitInputPixels: MAX_PIXELS, failOn: 'error', pages: 1 });
  const meta = await decoder.metadata();
  const orientation = meta.format === 'jpeg' ? undefined : meta.orientation; // a WebP's or TIFF's EXIF orientation
  if (meta.space === 'cmyk') return { ...(await cmykAsPillowDoes(decoder)), orientation };
  const { data, info } = await decoder.toColourspace('srgb').ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length),
    orientation };
}

// A CMYK image's raw ink values converted as Pillow converts them (Convert.c's cmyk2rgb, no colour
// profile): sharp's own conversion goes through an ICC profile and moved a probability by 6.5e-3.
async function cmykAsPillowDoes(decoder) {
  const { data, info } = await decoder.pipelineColourspace('cmyk').toColourspace('cmyk').raw()
    .toBuffer({ resolveWithObject: true });
  const n = info.width * info.height, out = new Uint8Array(4 * n);
  const muldiv255 = (a, b) => { const t = a * b + 128; return ((t >> 8) + t) >> 8; };
  for (let i = 0; i < n; i++) {
    const nk = 255 - data[4 * i + 3];
    for (let c = 0; c < 3; c++) out[4 * i + c] = Math.max(0, Math.min(255, nk - muldiv255(data[4 * i + c], nk)));
    out[4 * i + 3] = 255;
  }
  return { width: info.width, height: info.height, data: out };
}

// An uncompressed BMP (BI_RGB: 24 or 32 bits per pixel, or 8 with a palette; the fourth byte of a
// 32-bit pixel is padding, as Pillow reads it) as RGBA. Other BMPs are refused, naming the kind.
function decodeBmp(bytes) {
  const offset = bytes.readUInt32LE(10), headerSize = bytes.readUInt32LE(14);
  const width = bytes.readInt32LE(18), rawHeight = bytes.readInt32LE(22);
  const bits = bytes.readUInt16LE(28), compression = bytes.readUInt32LE(30);
  if (compression !== 0 || ![8, 24, 32].includes(bits) || width <= 0 || rawHeight === 0) {
    throw new Error(`a BMP with ${bits} bits per pixel and compression ${compression}: this client reads ` +
                    'uncompressed 8-, 24- and 32-bit BMPs; save it as PNG');
  }
  const height = Math.abs(rawHeight), stride = Math.ceil((width * bits) / 32) * 4;
  if (offset + stride * height > bytes.length) throw new Error('the pixel data is truncated');
  const colours = bits === 8 ? (bytes.readUInt32LE(46) || 256) : 0, palette = 14 + headerSize;
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    const row = offset + stride * (rawHeight > 0 ? height - 1 - y : y); // bottom-up unless the height is negative
    for (let x = 0; x < width; x++) {
      let p = row + x * (bits / 8);
      if (bits === 8) {
        if (bytes[p] >= colours) throw new Error(`palette index ${bytes[p]} beyond its ${colours} colours`);
        p = palette + 4 * bytes[p];
      }
      data.set([bytes[p + 2], bytes[p + 1], bytes[p], 255], 4 * (y * width + x));
    }
  }
  return { width, height, data };
}

// Each image decoded and brought to the model's size at once, one at a time: memory holds one
// full-size image, however many there are.
async function readImages(client, model, files) {
  const images = [];
  for (const file of files) images.push({ pixels: await client.toPixels(model, await readImage(file)) });
  return images;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const [modelArg, classRoot, ...queryPaths] = args.positional;
  const modelDir = modelFolder(modelArg);
  const sidecar = readSidecar(modelDir);
  const client = await import('../web/anil_edge_client.mjs'); // the steps the browser page runs too
  let chosen;
  try {
    chosen = client.chooseBackbone(sidecar, args.precision, client.cpuClass(process.arch, cpuFlags()));
  } catch (err) {
    usage(err.message);
  }
  const backboneKind = chosen.kind;
  if (args.precision !== 'fp32') process.stderr.write(`backbone: ${sidecar.files[backboneKind].path} (${chosen.reason})\n`);
  const where = (name) => path.join(modelDir, name);
  const read = (name) => {
    try { return fs.readFileSync(where(name)); } catch (err) { return usage(`${where(name)}: cannot read (${err.code || err.message})`); }
  };
  let model, threshold;
  try {
    const options = { enableCpuMemArena: false, enableMemPattern: false }; // memory returns after each image
    model = await client.openModel(ort, sidecar, { read, name: where, backboneKind, options });
    threshold = client.rejectThreshold(model, args.reject);
  } catch (err) {
    usage(err.message.replace(/^reject /, '--reject '));
  }

  const started = process.hrtime.bigint();
  const classes = classFolders(classRoot);
  const files = queryFiles(queryPaths); // before any work: an empty query set is refused at once
  const supportFiles = classes.flatMap((c) => c.files);
  const support = [];
  for (const c of classes) support.push({ label: c.label, images: await readImages(client, model, c.files) });
  const head = await client.enroll(model, support);
  const enrolled = process.hrtime.bigint();
  const results = await client.predict(model, head, await readImages(client, model, files), threshold);
  const done = process.hrtime.bigint();

  const C = classes.length;
  results.forEach((result, i) => {
    const { embedding, ...rest } = result;
    const line = { image: files[i], ...rest, ...(args.embeddings ? { embedding } : {}) };
    process.stdout.write(args.json ? JSON.stringify(line) + '\n'
      : `${files[i]}  ${line.label === null ? 'unknown' : line.label}  ${line.probability.toFixed(3)}  ${line.open_set_score.toFixed(3)}\n`);
  });
  const ms = (a, b) => Number(b - a) / 1e6;
  process.stderr.write(`enrolled ${C} classes from ${supportFiles.length} images in ${ms(started, enrolled).toFixed(1)} ms; ` +
    `predicted ${files.length} images in ${ms(enrolled, done).toFixed(1)} ms\n`);
}

main().catch((err) => { process.stderr.write(`enroll_predict: error: ${err.message}\n`); process.exit(1); });
