// ortbench.js times ONNX Runtime for perftable: node ortbench.js JOB_DIR.
// JOB_DIR/job.json: {module, threads, optLevel, warmup, iters, idIters,
// model, idModel, input: {name, dims, file}, idInput: {name, dims, file}}
// (float32 inputs as raw little-endian files). For the model, then the
// 1-element Identity model (the binding overhead), it runs warmup untimed
// calls and then times each session.run call by wall clock
// (process.hrtime) and by the process's CPU time (process.cpuUsage, user
// + system, all threads). Writes JOB_DIR/result.json: {model: {wall,
// cpu}, identity: {wall, cpu}} in nanoseconds, or {error}.
'use strict';
const fs = require('fs');
const path = require('path');

const dir = process.argv[2];

function tensor(ort, spec) {
  const buf = fs.readFileSync(path.join(dir, spec.file));
  const ab = new ArrayBuffer(buf.length); // copy: typed arrays need alignment
  new Uint8Array(ab).set(buf);
  return new ort.Tensor('float32', new Float32Array(ab), spec.dims);
}

async function time(ort, job, model, input, warmup, iters) {
  const session = await ort.InferenceSession.create(path.join(dir, model), {
    intraOpNumThreads: job.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: job.optLevel,
    executionProviders: ['cpu'],
  });
  try {
    const feeds = { [input.name]: tensor(ort, input) };
    for (let i = 0; i < warmup; i++) await session.run(feeds);
    const wall = [], cpu = [];
    for (let i = 0; i < iters; i++) {
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      await session.run(feeds);
      const t1 = process.hrtime.bigint();
      const c = process.cpuUsage(c0);
      wall.push(Number(t1 - t0));
      cpu.push((c.user + c.system) * 1000);
    }
    return { wall, cpu };
  } finally {
    await session.release();
  }
}

async function main() {
  const job = JSON.parse(fs.readFileSync(path.join(dir, 'job.json'), 'utf8'));
  const ort = require(job.module);
  const model = await time(ort, job, job.model, job.input, job.warmup, job.iters);
  const identity = await time(ort, job, job.idModel, job.idInput, 200, job.idIters);
  fs.writeFileSync(path.join(dir, 'result.json'), JSON.stringify({ model, identity }));
}

main().catch((e) => {
  fs.writeFileSync(path.join(dir, 'result.json'), JSON.stringify({ error: String(e && e.message ? e.message : e) }));
});
