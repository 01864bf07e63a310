// Writes the PWA PNG icons (a teal rounded square with a white speech bubble)
// without any image library: raw RGBA -> PNG via zlib. Run: node scripts/make-icons.mjs
import { writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';

function crc32(buf) {
  let c, crc = 0xffffffff;
  for (let n = 0; n < buf.length; n++) {
    c = (crc ^ buf[n]) & 0xff;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    crc = (crc >>> 8) ^ c;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type), data]);
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
function png(size, maskable) {
  const raw = Buffer.alloc((size * 4 + 1) * size);
  const r = maskable ? 0 : size * 0.18;
  const inRound = (x, y) => {
    if (maskable) return true;
    const cx = Math.min(Math.max(x, r), size - r), cy = Math.min(Math.max(y, r), size - r);
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
  };
  // speech bubble: ellipse + tail
  const bx = size / 2, by = size * 0.46, rx = size * (maskable ? 0.26 : 0.3), ry = size * (maskable ? 0.19 : 0.22);
  const inBubble = (x, y) => {
    if (((x - bx) / rx) ** 2 + ((y - by) / ry) ** 2 <= 1) return true;
    // tail triangle
    const tx0 = bx - rx * 0.5, ty0 = by + ry * 0.6, tx1 = bx - rx * 0.75, ty1 = by + ry * 1.5, tx2 = bx - rx * 0.05;
    const area = (ax, ay, bx2, by2, cx, cy) => (ax * (by2 - cy) + bx2 * (cy - ay) + cx * (ay - by2)) / 2;
    const A = Math.abs(area(tx0, ty0, tx1, ty1, tx2, ty0));
    const a1 = Math.abs(area(x, y, tx1, ty1, tx2, ty0)), a2 = Math.abs(area(tx0, ty0, x, y, tx2, ty0)), a3 = Math.abs(area(tx0, ty0, tx1, ty1, x, y));
    return Math.abs(a1 + a2 + a3 - A) < 0.5 * size / 100 + 0.01;
  };
  for (let y = 0; y < size; y++) {
    raw[y * (size * 4 + 1)] = 0;
    for (let x = 0; x < size; x++) {
      const o = y * (size * 4 + 1) + 1 + x * 4;
      if (!inRound(x + 0.5, y + 0.5)) { raw[o + 3] = 0; continue; }
      const white = inBubble(x + 0.5, y + 0.5);
      raw[o] = white ? 255 : 0x0f; raw[o + 1] = white ? 255 : 0x76; raw[o + 2] = white ? 255 : 0x6e; raw[o + 3] = 255;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0); ihdr.writeUInt32BE(size, 4); ihdr[8] = 8; ihdr[9] = 6; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw, { level: 9 })), chunk('IEND', Buffer.alloc(0))]);
}
const out = new URL('../public/', import.meta.url);
writeFileSync(new URL('icon-192.png', out), png(192, false));
writeFileSync(new URL('icon-512.png', out), png(512, false));
writeFileSync(new URL('icon-maskable-512.png', out), png(512, true));
console.log('icons written');
