// The client library's size: node tests/js/size.mjs
// Minifies src/js/tickwire.js with terser (compress + mangle, as an ES module) and gzips
// the result at level 9; prints bytes raw, minified and minified+gzip.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { minify } from 'terser';
import { LIB } from './helpers.mjs';

const src = readFileSync(LIB, 'utf8');
const { code } = await minify(src, { module: true, compress: { passes: 2 }, mangle: true });
const kb = (n) => `${n} B (${(n / 1024).toFixed(1)} KiB)`;
console.log('command: node tests/js/size.mjs (terser 5, module, compress passes 2, mangle; gzip -9)');
console.log(`src/js/tickwire.js raw:       ${kb(Buffer.byteLength(src))}`);
console.log(`                   gzip:      ${kb(gzipSync(src, { level: 9 }).length)}`);
console.log(`                   min:       ${kb(Buffer.byteLength(code))}`);
console.log(`                   min+gzip:  ${kb(gzipSync(code, { level: 9 }).length)}`);
