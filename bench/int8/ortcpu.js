// ortcpu.js times ONNX Runtime (onnxruntime-node) for goslim's INT8
// benchmark: per session.run call, wall time and the process's CPU time
// (process.cpuUsage, user + system), so ORT can be compared by CPU time on
// a loaded machine. Usage: node ortcpu.js JOB_DIR (job.json in, result.json
// out; see ort.go).
'use strict';
const fs = require('fs');
const path = require('path');
const dir = process.argv[2];

async function main() {
  const job = JSON.parse(fs.readFileSync(path.join(dir, 'job.json'), 'utf8'));
  const ort = require(job.module);
  const sessions = [];
  for (const r of job.models) {
    const s = await ort.InferenceSession.create(path.join(dir, r.model), {
      intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential',
      graphOptimizationLevel: 'all', executionProviders: ['cpu'],
    });
    const buf = fs.readFileSync(path.join(dir, r.input));
    const ab = new ArrayBuffer(buf.length);
    new Uint8Array(ab).set(buf);
    const feeds = {};
    feeds[r.name] = new ort.Tensor('float32', new Float32Array(ab), r.dims);
    for (let i = 0; i < r.warmup; i++) await s.run(feeds);
    sessions.push({ s, feeds, iters: r.iters, wall: [], cpu: [] });
  }
  // Rounds alternate the models so load changes hit them alike.
  for (let round = 0; round < job.rounds; round++) {
    for (const m of sessions) {
      for (let i = 0; i < m.iters; i++) {
        const c0 = process.cpuUsage();
        const t0 = process.hrtime.bigint();
        await m.s.run(m.feeds);
        const t1 = process.hrtime.bigint();
        const c = process.cpuUsage(c0);
        m.wall.push(Number(t1 - t0));
        m.cpu.push((c.user + c.system) * 1000);
      }
    }
  }
  const runs = sessions.map((m) => ({ wall: m.wall, cpu: m.cpu }));
  for (const m of sessions) await m.s.release();
  fs.writeFileSync(path.join(dir, 'result.json'), JSON.stringify({ version: ort.env.versions.node || ort.env.versions.common, runs }));
}

main().catch((e) => {
  fs.writeFileSync(path.join(dir, 'result.json'), JSON.stringify({ error: String(e && e.message ? e.message : e) }));
});
