#!/usr/bin/env node
// Times ONNX models under ONNX Runtime (onnxruntime-node, CPU, one thread by
// default) and prints one JSON object per model on stdout:
//   {"model":"mnv2-035-r32","median_ms":0.1,"p90_ms":0.12,"mean_ms":..,"min_ms":..,"runs":1234,"threads":1}
//
// usage: node ort_bench.js [options] MODEL.onnx...
//   --seconds S         timed phase length (default 2.5); at least --min-runs runs
//   --min-runs N        (default 30)
//   --warmup-seconds S  warm-up length (default 0.5); at least --warmup-runs runs
//   --warmup-runs N     (default 20)
//   --threads N         intraOpNumThreads (default 1)
//   --check             instead of timing, run MODEL's input from
//                       MODEL.check.safetensors (written beside it by
//                       make_models.py) and compare with torch's logits there;
//                       prints {"model":..,"check":"ok","max_abs_diff":..} or
//                       exits 1 when the difference exceeds --tol
//   --tol T             (default 1e-4)
'use strict';

const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

function usage(msg) {
  if (msg) process.stderr.write(`ort_bench.js: ${msg}\n`);
  process.stderr.write('usage: node ort_bench.js [--seconds S] [--min-runs N] [--warmup-seconds S] ' +
    '[--warmup-runs N] [--threads N] [--check [--tol T]] MODEL.onnx...\n');
  process.exit(2);
}

function parseArgs(argv) {
  const o = { seconds: 2.5, minRuns: 30, warmupSeconds: 0.5, warmupRuns: 20, threads: 1, check: false, tol: 1e-4, models: [] };
  const num = (name, v) => {
    const x = Number(v);
    if (v === undefined || !Number.isFinite(x) || x < 0) usage(`${name} wants a non-negative number`);
    return x;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--seconds': o.seconds = num(a, argv[++i]); break;
      case '--min-runs': o.minRuns = Math.floor(num(a, argv[++i])); break;
      case '--warmup-seconds': o.warmupSeconds = num(a, argv[++i]); break;
      case '--warmup-runs': o.warmupRuns = Math.floor(num(a, argv[++i])); break;
      case '--threads': o.threads = Math.max(1, Math.floor(num(a, argv[++i]))); break;
      case '--check': o.check = true; break;
      case '--tol': o.tol = num(a, argv[++i]); break;
      case '-h': case '--help': usage(); break;
      default:
        if (a.startsWith('-')) usage(`unknown option ${a}`);
        o.models.push(a);
    }
  }
  if (o.models.length === 0) usage('no model given');
  return o;
}

// Minimal safetensors reader: F32 tensors only (what make_models.py writes).
function readSafetensors(file) {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const base = 8 + n;
  const out = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (info.dtype !== 'F32') throw new Error(`${file}: ${name} is ${info.dtype}, want F32`);
    const [b, e] = info.data_offsets;
    const data = new Float32Array((e - b) / 4);
    for (let i = 0; i < data.length; i++) data[i] = buf.readFloatLE(base + b + 4 * i);
    out[name] = { shape: info.shape, data };
  }
  return out;
}

// Deterministic standard normal values (xorshift32 + Box-Muller).
function randomInput(size, seed) {
  let s = seed >>> 0 || 1;
  const u = () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return (s + 1) / 4294967297;
  };
  const a = new Float32Array(size);
  for (let i = 0; i < size; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u()));
    const t = 2 * Math.PI * u();
    a[i] = r * Math.cos(t);
    if (i + 1 < size) a[i + 1] = r * Math.sin(t);
  }
  return a;
}

function modelName(file) {
  return path.basename(file).replace(/\.onnx$/, '');
}

async function openSession(file, threads) {
  return ort.InferenceSession.create(file, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
}

function inputShape(session, file) {
  const meta = session.inputMetadata && session.inputMetadata[0];
  if (meta && Array.isArray(meta.shape) && meta.shape.every((d) => typeof d === 'number' && d > 0)) {
    return meta.shape;
  }
  // Older bindings lack metadata: the check file holds the shape.
  const check = file.replace(/\.onnx$/, '.check.safetensors');
  if (fs.existsSync(check)) return readSafetensors(check).input.shape;
  throw new Error(`${file}: cannot tell the input shape`);
}

async function check(file, o) {
  const session = await openSession(file, o.threads);
  const ref = readSafetensors(file.replace(/\.onnx$/, '.check.safetensors'));
  const name = session.inputNames[0];
  const out = await session.run({ [name]: new ort.Tensor('float32', ref.input.data, ref.input.shape) });
  const got = out[session.outputNames[0]];
  const want = ref.logits;
  if (got.data.length !== want.data.length) {
    throw new Error(`${file}: ORT gives ${got.data.length} outputs, torch ${want.data.length}`);
  }
  let maxDiff = 0;
  let maxAbs = 0;
  for (let i = 0; i < want.data.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(got.data[i] - want.data[i]));
    maxAbs = Math.max(maxAbs, Math.abs(want.data[i]));
  }
  const ok = maxDiff <= o.tol;
  console.log(JSON.stringify({ model: modelName(file), check: ok ? 'ok' : 'FAILED', max_abs_diff: maxDiff, max_abs_logit: maxAbs, tol: o.tol }));
  await session.release();
  return ok;
}

function percentile(sorted, p) {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

async function bench(file, o) {
  const session = await openSession(file, o.threads);
  const shape = inputShape(session, file);
  const size = shape.reduce((a, b) => a * b, 1);
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', randomInput(size, 12345), shape) };

  const now = () => Number(process.hrtime.bigint()) / 1e6; // ms
  let t0 = now();
  for (let n = 0; n < o.warmupRuns || now() - t0 < o.warmupSeconds * 1000; n++) {
    await session.run(feeds);
  }
  const times = [];
  t0 = now();
  while (times.length < o.minRuns || now() - t0 < o.seconds * 1000) {
    const a = now();
    await session.run(feeds);
    times.push(now() - a);
  }
  const sorted = times.slice().sort((x, y) => x - y);
  const r = (x) => Math.round(x * 10000) / 10000;
  console.log(JSON.stringify({
    model: modelName(file),
    median_ms: r(percentile(sorted, 50)),
    p90_ms: r(percentile(sorted, 90)),
    mean_ms: r(times.reduce((a, b) => a + b, 0) / times.length),
    min_ms: r(sorted[0]),
    runs: times.length,
    threads: o.threads,
  }));
  await session.release();
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  let failed = false;
  for (const file of o.models) {
    if (!fs.existsSync(file)) throw new Error(`${file}: no such file`);
    if (o.check) {
      if (!(await check(file, o))) failed = true;
    } else {
      await bench(file, o);
    }
  }
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  process.stderr.write(`ort_bench.js: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
