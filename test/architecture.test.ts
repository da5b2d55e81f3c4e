// The import rule of docs/ARCHITECTURE.md, checked on the source: every import points down
// (core <- io/gpu <- service <- processing/schema <- server <- cli/worker), the core uses standard WebGPU
// only (no Node APIs, no `webgpu` package), and only src/gpu/node.ts loads Dawn.

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');

/** Layer of a module (lower is deeper); a module may import its own layer and the ones below. */
const LAYERS: [RegExp, number, string][] = [
  [/^src\/core\//, 0, 'core'],
  [/^src\/(io|gpu|models|generated)\/|^src\/synthetic(3d)?\.ts$/, 1, 'io/gpu'],
  [/^src\/(service\/|db\.ts$|migrate\.ts$|dataLock\.ts$)/, 2, 'service'],
  [/^src\/(processing|schema|eval)\/|^src\/builder\.ts$/, 3, 'processing/schema'],
  [/^src\/server\//, 4, 'server'],
  [/^src\/(cli|worker)\//, 5, 'cli/worker'],
];

function layerOf(file: string): { rank: number; name: string } {
  for (const [re, rank, name] of LAYERS) if (re.test(file)) return { rank, name };
  throw new Error(`${file} belongs to no layer of docs/ARCHITECTURE.md`);
}

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory()) return path === 'src/generated' ? [] : sources(path);
    return /\.(ts|mts)$/.test(e.name) ? [path] : [];
  });
}

/** Static and dynamic import specifiers of a module (type-only imports count: they couple the layers too). */
function imports(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const found: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm)) {
    found.push(m[1] ?? m[2] ?? m[3]);
  }
  return found;
}

const files = sources('src');

describe('the import rule', () => {
  it('finds the modules it checks', () => {
    expect(files.length).toBeGreaterThan(100);
    expect(files).toContain('src/core/pipeline.ts');
    expect(imports('src/core/pipeline.ts')).toContain('./plan.ts');
  });

  it('every import points down', () => {
    const upward: string[] = [];
    for (const file of files) {
      const from = layerOf(file);
      for (const spec of imports(file)) {
        if (!spec.startsWith('.')) continue;
        const target = relative(ROOT, normalize(join(ROOT, dirname(file), spec))).replaceAll('\\', '/');
        if (!target.startsWith('src/')) {
          upward.push(`${file} imports ${spec} (outside src/: bench/ and scripts/ are never imported by the product)`);
          continue;
        }
        const to = layerOf(target);
        if (to.rank > from.rank) upward.push(`${file} (${from.name}) imports ${target} (${to.name})`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('the product loads no dev dependency when its modules load (they may be absent: npm ci --omit=dev)', () => {
    const dev = new Set(Object.keys(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).devDependencies));
    const packageOf = (spec: string) => spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');
    const offending: string[] = [];
    for (const file of files) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      // Static imports that stay in the JavaScript (type-only ones are erased).
      for (const m of text.matchAll(/^\s*(?:import|export)\s+(?!type\s)[^'"]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]/gm)) {
        const spec = m[1] ?? m[2];
        if (dev.has(packageOf(spec))) offending.push(`${file} imports ${spec}`);
      }
    }
    expect(dev.has('@tensorflow/tfjs')).toBe(true);
    expect(offending).toEqual([]);
  });

  it('the core uses no Node API and no WebGPU implementation; only src/gpu/node.ts loads Dawn', () => {
    const offending: string[] = [];
    for (const file of files) {
      for (const spec of imports(file)) {
        if (file.startsWith('src/core/') && !spec.startsWith('.')) offending.push(`${file} imports ${spec}`);
        if (spec === 'webgpu' && file !== 'src/gpu/node.ts') offending.push(`${file} imports webgpu`);
      }
    }
    expect(offending).toEqual([]);
  });
});
