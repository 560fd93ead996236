// oracle.js runs ONNX models in ONNX Runtime for goslim's ortoracle package.
// Usage: node oracle.js JOB_DIR. JOB_DIR/job.json names the models, their
// inputs (raw little-endian files) and the mode ("version", "run" or
// "bench"); the script writes JOB_DIR/result.json and one raw file per
// output. An ORT failure of one model is reported in that model's entry as
// {"error": message}; a failure outside any model as a top-level "error".
'use strict';
const fs = require('fs');
const path = require('path');

const dir = process.argv[2];

function writeResult(obj) {
  fs.writeFileSync(path.join(dir, 'result.json'), JSON.stringify(obj));
}

function message(e) {
  return String(e && e.message ? e.message : e);
}

const typed = {
  float32: Float32Array, float64: Float64Array, float16: Uint16Array,
  int8: Int8Array, uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array,
  int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array,
  bool: Uint8Array,
};

function loadInput(ort, spec) {
  const ctor = typed[spec.type];
  if (!ctor) throw new Error('ortoracle: unsupported input type ' + spec.type);
  const buf = fs.readFileSync(path.join(dir, spec.file));
  const ab = new ArrayBuffer(buf.length); // copy: typed arrays need alignment
  new Uint8Array(ab).set(buf);
  return new ort.Tensor(spec.type, new ctor(ab), spec.dims);
}

async function runOne(ort, job, r, idx) {
  const session = await ort.InferenceSession.create(path.join(dir, r.model), {
    intraOpNumThreads: job.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: job.optLevel,
    executionProviders: ['cpu'],
  });
  try {
    const feeds = {};
    for (const spec of r.inputs || []) feeds[spec.name] = loadInput(ort, spec);
    if (job.mode === 'bench') {
      for (let i = 0; i < job.warmup; i++) await session.run(feeds);
      const times = [];
      for (let i = 0; i < job.iters; i++) {
        const t0 = process.hrtime.bigint();
        await session.run(feeds);
        times.push(Number(process.hrtime.bigint() - t0));
      }
      return { times };
    }
    const res = await session.run(feeds);
    const outputs = [];
    session.outputNames.forEach((name, i) => {
      const t = res[name];
      const file = 'r' + idx + '_out' + i + '.bin';
      const d = t.data;
      fs.writeFileSync(path.join(dir, file), Buffer.from(d.buffer, d.byteOffset, d.byteLength));
      outputs.push({ name, type: t.type, dims: t.dims.map(Number), file });
    });
    return { outputs };
  } finally {
    await session.release();
  }
}

async function main() {
  const job = JSON.parse(fs.readFileSync(path.join(dir, 'job.json'), 'utf8'));
  const ort = require(job.module);
  if (job.mode === 'version') {
    writeResult({ version: ort.env.versions.node || ort.env.versions.common });
    return;
  }
  const runs = [];
  for (let i = 0; i < job.runs.length; i++) {
    try {
      runs.push(await runOne(ort, job, job.runs[i], i));
    } catch (e) {
      runs.push({ error: message(e) });
    }
  }
  writeResult({ runs });
}

main().catch((e) => {
  writeResult({ error: message(e) });
});
