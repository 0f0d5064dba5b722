#!/usr/bin/env bash
# node workload: `node -e` with allocation churn: objects, Maps, arrays, string
# building, JSON round trips, Buffers (backing stores come from malloc/calloc) and
# zlib. V8 maps its own heap; everything printed is a function of a fixed seed.
# Usage: node.sh WORKDIR   (prints a deterministic summary on stdout)
set -euo pipefail
workdir=${1:?usage: node.sh WORKDIR}
cd "$workdir"
export LC_ALL=C HOME=$workdir NODE_DISABLE_COLORS=1
unset NODE_OPTIONS NODE_PATH

node -e '
"use strict";
const crypto = require("crypto");
const zlib = require("zlib");
let seed = 12345;
function rnd() { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed; }
const sha = crypto.createHash("sha256");
function report(...v) { const line = v.join(" "); sha.update(line); console.log(line); }

// Objects and Maps.
const m = new Map();
for (let i = 0; i < 300000; i++) {
  const k = "k" + (rnd() % 60000);
  let e = m.get(k);
  if (!e) { e = { key: k, items: [] }; m.set(k, e); }
  e.items.push({ i, s: "v" + i });
}
let total = 0;
for (const e of m.values()) for (const it of e.items) total += it.i;
report("map", m.size, total);
m.clear();

// Strings and JSON.
const users = [];
for (let i = 0; i < 60000; i++)
  users.push({ id: i, name: "user" + i, tags: Array.from({ length: i % 7 }, (_, j) => "t" + ((i * j) % 31)), score: (rnd() % 100000) / 100 });
const text = JSON.stringify({ users });
const back = JSON.parse(text);
const text2 = JSON.stringify(back, null, 1);
report("json", text.length, text2.length, crypto.createHash("sha256").update(text2).digest("hex").slice(0, 16));
let parts = [];
for (let i = 0; i < 200000; i++) parts.push((i * 2654435761 >>> 0).toString(16) + ":" + "ab".repeat(i % 9));
const s = parts.join(";").replace(/ab/g, "xyz").toUpperCase();
report("string", s.length, s.split(";").length);
parts = null;

// Buffers and zlib: native memory outside the V8 heap.
let crc = 0, zsize = 0;
for (let r = 0; r < 120; r++) {
  const b = Buffer.allocUnsafe(32768 + r * 512);
  for (let i = 0; i < b.length; i++) b[i] = 97 + (rnd() >>> 29);
  const z = zlib.deflateSync(b);
  const u = zlib.inflateSync(z);
  if (!u.equals(b)) throw new Error("zlib mismatch");
  zsize += z.length;
  for (let i = 0; i < u.length; i += 97) crc = (crc * 31 + u[i]) >>> 0;
  const big = Buffer.alloc(1 << 20, r);
  crc = (crc + big[big.length - 1]) >>> 0;
}
report("buffers", zsize, crc);

// Typed arrays and short-lived arrays.
let acc = 0;
for (let r = 0; r < 200; r++) {
  const a = new Float64Array(20000 + r);
  for (let i = 0; i < a.length; i++) a[i] = (i * r) % 101;
  acc += a.reduce((x, y) => x + y, 0);
  const arr = Array.from({ length: 5000 }, (_, i) => [i, r]);
  acc += arr.length;
}
report("arrays", acc);
console.log("digest", sha.digest("hex"));
'
