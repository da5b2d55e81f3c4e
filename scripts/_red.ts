import { nodeGpu } from '../src/gpu/node.ts';
import { moments } from '../src/core/stats.ts';
import * as K from '../src/core/kernels.ts';
const { gpu } = await nodeGpu();
gpu.enableProfiling();
const n = 1 << 20, segs = 25;
const data = new Float32Array(n * segs); for (let i = 0; i < data.length; i++) data[i] = Math.random();
const a = gpu.upload(data);
for (const chunk of [4096, 16384, 65536]) {
  const times: number[] = [];
  for (let r = 0; r < 5; r++) {
    const pps = Math.ceil(n / chunk); const nparts = pps * segs;
    const parts = gpu.alloc(nparts * 8); const out = gpu.alloc(segs * 8);
    const params = { len: n, chunk, pps, nparts };
    await gpu.sync(); await gpu.takeProfile();
    gpu.run(K.kernels.reducePartial, params, { values: a, parts }, nparts);
    gpu.run(K.kernels.reduceFinal, params, { parts, out }, [segs, 1, 1]);
    const res = await gpu.readF32(out, 8);
    const p = await gpu.takeProfile();
    times.push(p.get('stats.reducePartial')!);
    if (r === 0) console.log('mean', res[2], 'std', res[3]);
    gpu.release(parts, out);
  }
  times.sort((x, y) => x - y);
  console.log(chunk, times.map((t) => t.toFixed(1)).join(' '));
}
process.exit(0);
