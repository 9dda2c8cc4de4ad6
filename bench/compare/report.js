#!/usr/bin/env node
// Turns the JSON lines compare.sh collected into its markdown table.
//
// usage: node report.js RESULTS.jsonl
// Each line: {"row":"mnv2-035-r32","side":"varpar"|"ort","round":1,"result":{...}}
// where result is `varpar bench --json` output or one ort_bench.js line. For
// each row and side the best (lowest) median over the rounds is reported.
'use strict';

const fs = require('fs');

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: node report.js RESULTS.jsonl\n');
  process.exit(2);
}

const rows = new Map(); // row -> {varpar: [...], ort: [...], macs, isa}
let isa = '';
let threads = '';
for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
  if (!line.trim()) continue;
  const e = JSON.parse(line);
  if (!rows.has(e.row)) rows.set(e.row, { varpar: [], ort: [], macs: null, params: null });
  const r = rows.get(e.row);
  if (e.side === 'varpar') {
    const v = e.result.variants && e.result.variants[0];
    if (!v || typeof v.median_ms !== 'number') throw new Error(`${e.row}: varpar result without variants[0].median_ms`);
    r.varpar.push(v);
    if (typeof v.macs === 'number') r.macs = v.macs;
    if (typeof v.params === 'number') r.params = v.params;
    if (e.result.isa) isa = e.result.isa;
    if (e.result.threads !== undefined) threads = e.result.threads;
  } else if (e.side === 'ort') {
    if (typeof e.result.median_ms !== 'number') throw new Error(`${e.row}: ORT result without median_ms`);
    r.ort.push(e.result);
  }
}

const best = (xs) => xs.reduce((a, b) => (b.median_ms < a.median_ms ? b : a));
const f = (x, d) => (x === null || x === undefined ? '?' : x.toFixed(d));
const ms = (x) => (x >= 10 ? x.toFixed(2) : x >= 1 ? x.toFixed(3) : x.toFixed(4));

const out = [];
out.push('| model | MACs (M) | varpar median ms | ORT median ms | ratio varpar/ORT |');
out.push('| --- | ---: | ---: | ---: | ---: |');
for (const [name, r] of rows) {
  if (r.varpar.length === 0 || r.ort.length === 0) throw new Error(`${name}: missing varpar or ORT results`);
  const v = best(r.varpar);
  const o = best(r.ort);
  out.push(`| ${name} | ${r.macs === null ? '?' : f(r.macs / 1e6, 1)} | ${ms(v.median_ms)} | ${ms(o.median_ms)} | ${f(v.median_ms / o.median_ms, 2)} |`);
}
console.log(out.join('\n'));
console.log('');
console.log(`varpar ISA: ${isa || '?'}, threads: ${threads === '' ? '?' : threads}; ` +
  'each cell is the lower of the per-round medians; rounds alternate varpar and ORT.');
