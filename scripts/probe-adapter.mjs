// Prints the WebGPU adapter that Dawn finds (Vulkan first, then OpenGL ES) and exits 0, or exits 1 when none.
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
for (const [flags, opts] of [[[], {}], [['backend=opengles'], { featureLevel: 'compatibility' }]]) {
  const gpu = create(flags);
  const adapter = await gpu.requestAdapter(opts);
  if (adapter && !/null/i.test(adapter.info?.description ?? '')) {
    console.log(`${adapter.info.vendor || '?'} ${adapter.info.architecture || ''} ${adapter.info.description || ''}`.trim());
    process.exit(0);
  }
}
process.exit(1);
