// EXIF orientation for decoded images, as the Python runtime applies it (PIL's exif_transpose):
// a phone stores a portrait photo sideways and says so in tag 0x0112; the image is turned
// upright before it is resized, so every client embeds the same pixels.
'use strict';

const ORIENTATION_TAG = 0x0112;

// The orientation (1..8) in a TIFF block (the body of a JPEG's "Exif\0\0" APP1 segment or a
// PNG's eXIf chunk); 1 (upright) when there is none or it cannot be read.
function tiffOrientation(tiff) {
  if (tiff.length < 8) return 1;
  const little = tiff[0] === 0x49 && tiff[1] === 0x49;
  if (!little && !(tiff[0] === 0x4d && tiff[1] === 0x4d)) return 1;
  const u16 = (at) => (little ? tiff.readUInt16LE(at) : tiff.readUInt16BE(at));
  const u32 = (at) => (little ? tiff.readUInt32LE(at) : tiff.readUInt32BE(at));
  const ifd = u32(4);
  if (ifd + 2 > tiff.length) return 1;
  for (let k = 0, n = u16(ifd); k < n; k++) {
    const entry = ifd + 2 + 12 * k;
    if (entry + 12 > tiff.length) return 1;
    if (u16(entry) === ORIENTATION_TAG) {
      const value = u16(entry + 8);
      return value >= 1 && value <= 8 ? value : 1;
    }
  }
  return 1;
}

// The orientation a PNG or JPEG file's bytes declare.
function orientation(bytes) {
  if (bytes[0] === 0x89) { // PNG: chunks of length, type, body, CRC
    for (let at = 8; at + 8 <= bytes.length;) {
      const length = bytes.readUInt32BE(at), type = bytes.toString('latin1', at + 4, at + 8);
      if (type === 'eXIf') return tiffOrientation(bytes.subarray(at + 8, at + 8 + length));
      if (type === 'IDAT' || type === 'IEND') return 1; // eXIf must come before the image data
      at += 12 + length;
    }
    return 1;
  }
  for (let at = 2; at + 4 <= bytes.length;) { // JPEG: segments up to the start of scan
    if (bytes[at] !== 0xff) return 1;
    const marker = bytes[at + 1], length = bytes.readUInt16BE(at + 2);
    if (marker === 0xda) return 1;
    if (marker === 0xe1 && bytes.toString('latin1', at + 4, at + 10) === 'Exif\0\0') {
      return tiffOrientation(bytes.subarray(at + 10, at + 2 + length));
    }
    at += 2 + length;
  }
  return 1;
}

// {width, height, data (RGBA)} turned upright for orientation 1..8 (2, 4: mirrored; 3: 180°;
// 5, 7: transposed; 6: stored 90° counter-clockwise, turned clockwise; 8: the other way).
function upright(image, code) {
  if (code === 1) return image;
  const { width: w, height: h, data } = image;
  const swap = code >= 5;
  const W = swap ? h : w, H = swap ? w : h;
  const source = [null, null,
    (x, y) => [w - 1 - x, y], (x, y) => [w - 1 - x, h - 1 - y], (x, y) => [x, h - 1 - y],
    (x, y) => [y, x], (x, y) => [y, h - 1 - x], (x, y) => [w - 1 - y, h - 1 - x], (x, y) => [w - 1 - y, x]][code];
  const out = new Uint8Array(W * H * 4);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const [sx, sy] = source(x, y);
      out.set(data.subarray(4 * (sy * w + sx), 4 * (sy * w + sx) + 4), 4 * (y * W + x));
    }
  }
  return { width: W, height: H, data: out };
}

module.exports = { orientation, upright };
