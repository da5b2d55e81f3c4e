// Every KernelSpec of the registry (allKernels) against its WGSL: the uniform struct bound at @binding(0)
// that the entry point uses must list exactly the spec's params (names, order, types), the storage
// bindings the entry point uses must be exactly the spec's non-null bindings, and every @compute entry
// point in shaders/ must have a spec. Then each spec is bound on the real device (Dawn validates the
// packed uniform's size against the struct and the bind group against the pipeline's layout).
//
// The rule for uniforms: a struct holds only real 4-byte scalars (u32, i32, f32), no padding fields and no
// vectors; Gpu.run packs field k at byte 4k and sizes the buffer to the struct rounded up to 16 bytes.

import { beforeAll, describe, expect, it } from 'vitest';
import { uniformLayout, type Gpu, type KernelSpec, type ParamField } from '../../src/core/gpu.ts';
import { allKernels } from '../../src/core/kernels.ts';
import { loadShaders } from '../../src/gpu/node.ts';
import { testGpu } from '../helpers/gpu.ts';

const shaders = loadShaders();

interface GlobalVar {
  group: number;
  binding: number;
  space: string;
  name: string;
  type: string;
}

interface Fn {
  compute: boolean;
  /** Parameter list and body. */
  params: string;
  body: string;
}

interface Module {
  structs: Map<string, [string, string][]>;
  vars: GlobalVar[];
  fns: Map<string, Fn>;
}

const stripComments = (code: string): string => code.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/[^\n]*/g, '');

/** A small reader of the module-scope WGSL this project writes: structs, bound variables, functions. */
function parseWgsl(source: string): Module {
  const code = stripComments(source);
  const structs = new Map<string, [string, string][]>();
  for (const m of code.matchAll(/\bstruct\s+(\w+)\s*\{([^}]*)\}/g)) {
    const fields = m[2]
      .split(',')
      .map((f) => f.trim())
      .filter((f) => f.length > 0)
      .map((f): [string, string] => {
        const fm = /^((?:@\w+(?:\([^)]*\))?\s*)*)(\w+)\s*:\s*(.+)$/s.exec(f);
        if (!fm) throw new Error(`struct ${m[1]}: cannot read field "${f}"`);
        if (fm[1].trim()) throw new Error(`struct ${m[1]}: field ${fm[2]} has attributes ${fm[1].trim()}`);
        return [fm[2], fm[3].replace(/\s+/g, '')];
      });
    structs.set(m[1], fields);
  }
  const vars: GlobalVar[] = [];
  for (const m of code.matchAll(/@group\((\d+)\)\s*@binding\((\d+)\)\s*var\s*(?:<\s*([^>,\s]+)[^>]*>)?\s+(\w+)\s*:\s*([^;]+);/g)) {
    vars.push({ group: Number(m[1]), binding: Number(m[2]), space: m[3] ?? 'handle', name: m[4], type: m[5].replace(/\s+/g, '') });
  }
  const fns = new Map<string, Fn>();
  for (const m of code.matchAll(/((?:@[\w]+(?:\([^)]*\))?\s*)*)\bfn\s+(\w+)\s*\(/g)) {
    // The body: from the first '{' after the signature to its matching '}'.
    let i = code.indexOf('{', m.index! + m[0].length);
    const start = i;
    let depth = 0;
    for (; i < code.length; i++) {
      if (code[i] === '{') depth++;
      else if (code[i] === '}' && --depth === 0) break;
    }
    fns.set(m[2], { compute: /@compute\b/.test(m[1]), params: code.slice(m.index! + m[0].length, start), body: code.slice(start, i + 1) });
  }
  return { structs, vars, fns };
}

/** The global variables an entry point uses: those named in its body or in a function it calls. */
function usedVars(mod: Module, entryPoint: string): GlobalVar[] {
  const seen = new Set<string>();
  const idents = new Set<string>();
  const visit = (name: string): void => {
    if (seen.has(name)) return;
    seen.add(name);
    const fn = mod.fns.get(name)!;
    // Names this function declares (parameters, let/var/const) shadow module-scope variables; a name after
    // '.' is a member (g.x), not a variable.
    const local = new Set([
      ...[...fn.params.matchAll(/(\w+)\s*:/g)].map((m) => m[1]),
      ...[...fn.body.matchAll(/\b(?:let|var|const)\s+(\w+)/g)].map((m) => m[1]),
    ]);
    for (const id of fn.body.match(/(?<![.\w])[A-Za-z_]\w*\b/g) ?? []) {
      if (mod.fns.has(id)) visit(id);
      else if (!local.has(id)) idents.add(id);
    }
  };
  visit(entryPoint);
  return mod.vars.filter((v) => idents.has(v.name));
}

const SCALARS = new Set(['u32', 'i32', 'f32']);

/** WGSL's size of a struct of scalars in the uniform address space (alignment 4: 4 bytes a field). */
function wgslStructBytes(fields: readonly [string, string][]): number {
  for (const [name, type] of fields) if (!SCALARS.has(type)) throw new Error(`field ${name}: ${type} is not a 4-byte scalar`);
  return 4 * fields.length;
}

/** What is wrong with a spec against its shaders (empty: nothing). */
function checkSpec(spec: KernelSpec, sources: Readonly<Record<string, string>>): string[] {
  const problems: string[] = [];
  const missing = spec.shaders.filter((s) => sources[s] === undefined);
  if (missing.length) return [`shaders not found: ${missing.join(', ')}`];
  const mod = parseWgsl(spec.shaders.map((s) => sources[s]).join('\n'));
  const fn = mod.fns.get(spec.entryPoint);
  if (!fn) return [`no function ${spec.entryPoint}`];
  if (!fn.compute) problems.push(`${spec.entryPoint} is not a @compute entry point`);
  const used = usedVars(mod, spec.entryPoint);
  for (const v of used) if (v.group !== 0) problems.push(`${v.name} is in group ${v.group}`);
  const at = (b: number) => used.filter((v) => v.group === 0 && v.binding === b);

  // Binding 0: the uniform struct.
  const params = spec.params ?? [];
  const uniforms = at(0);
  if (params.length === 0) {
    if (uniforms.length) problems.push(`uses ${uniforms.map((v) => v.name).join(', ')} at binding 0 but the spec has no params`);
  } else if (uniforms.length !== 1) {
    problems.push(`${uniforms.length} variables at binding 0 (${uniforms.map((v) => v.name).join(', ')}), expected one uniform`);
  } else {
    const u = uniforms[0];
    const fields = mod.structs.get(u.type);
    if (u.space !== 'uniform') problems.push(`${u.name} at binding 0 is var<${u.space}>, not var<uniform>`);
    if (!fields) problems.push(`${u.name}: struct ${u.type} not found`);
    else {
      const wgsl = fields.map(([n, t]) => `${n}: ${t}`);
      const ts = params.map(([n, t]: ParamField) => `${n}: ${t}`);
      if (wgsl.join(', ') !== ts.join(', ')) problems.push(`struct ${u.type} { ${wgsl.join(', ')} } but spec.params [${ts.join(', ')}]`);
      for (const [n] of fields) if (/^pad\d*$/.test(n)) problems.push(`struct ${u.type} has a padding field ${n} (Gpu.run pads the buffer)`);
      try {
        const need = wgslStructBytes(fields);
        const { bytes, offsets } = uniformLayout(params);
        if (bytes < need || bytes % 16 !== 0) problems.push(`packed ${bytes} bytes for a ${need}-byte struct`);
        if (offsets.some((o, k) => o !== 4 * k)) problems.push(`packed offsets ${offsets.join(', ')} are not WGSL's`);
      } catch (e) {
        problems.push(`struct ${u.type}: ${(e as Error).message}`);
      }
    }
  }

  // Bindings 1, 2, ...: the storage buffers, in order; null where the entry point uses none.
  const maxBinding = Math.max(0, ...used.map((v) => v.binding));
  if (spec.bindings.length > 0 && spec.bindings[spec.bindings.length - 1] === null) problems.push('spec.bindings ends in null');
  for (let b = 1; b <= Math.max(maxBinding, spec.bindings.length); b++) {
    const vars = at(b);
    const name = spec.bindings[b - 1] ?? null;
    if (vars.length > 1) problems.push(`binding ${b}: ${vars.map((v) => v.name).join(' and ')} both used`);
    else if (vars.length === 1 && name === null) problems.push(`binding ${b} (${vars[0].name}) is used but spec.bindings[${b - 1}] is null`);
    else if (vars.length === 0 && name !== null) problems.push(`spec.bindings[${b - 1}] = ${name} but ${spec.entryPoint} uses no binding ${b}`);
    else if (vars.length === 1 && vars[0].space !== 'storage') problems.push(`binding ${b} (${vars[0].name}) is var<${vars[0].space}>, not storage`);
  }
  return problems;
}

describe('kernel specs own their uniforms: every spec of the registry matches its WGSL', () => {
  it('the registry is not empty and names each kernel once per override set', () => {
    expect(allKernels.length).toBeGreaterThan(40);
    const keys = allKernels.map((s) => `${s.name}|${JSON.stringify(s.constants ?? {})}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it.each(allKernels.map((s) => [s.name, s] as const))('%s: uniform struct and storage bindings match the spec', (_, spec) => {
    expect(checkSpec(spec, shaders)).toEqual([]);
  });

  it('every @compute entry point in shaders/ has a spec in allKernels', () => {
    const covered = new Set(allKernels.map((s) => `${s.shaders[s.shaders.length - 1]}.${s.entryPoint}`));
    const missing: string[] = [];
    for (const [file, src] of Object.entries(shaders)) {
      for (const [name, fn] of parseWgsl(src).fns) if (fn.compute && !covered.has(`${file}.${name}`)) missing.push(`${file}.wgsl ${name}`);
    }
    expect(missing).toEqual([]);
  });

  it('no spec lists a padding field', () => {
    const pads = allKernels.flatMap((s) => (s.params ?? []).filter(([n]) => /^pad\d*$/.test(n)).map(([n]) => `${s.name}.${n}`));
    expect(pads).toEqual([]);
  });

  it('the packer: field k at byte 4k, buffer = 4 x fields rounded up to 16 (at least 16)', () => {
    const f = (n: number): ParamField[] => Array.from({ length: n }, (_, k) => [`f${k}`, 'u32'] as const);
    expect([1, 4, 5, 8, 9, 13].map((n) => uniformLayout(f(n)).bytes)).toEqual([16, 16, 32, 32, 48, 64]);
    expect(uniformLayout(f(3)).offsets).toEqual([0, 4, 8]);
  });

  describe('the checker fails on the mistakes it is for', () => {
    const spec = allKernels.find((s) => s.name === 'binarize.thresholdMap')!;
    it('a renamed, reordered, retyped or missing field; a padding field', () => {
      const src = shaders.binarize;
      const edit = (from: string, to: string) => ({ ...shaders, binarize: src.replace(from, to) });
      expect(checkSpec(spec, shaders)).toEqual([]);
      expect(checkSpec(spec, edit('pixels: u32, threshold: f32', 'count: u32, threshold: f32'))[0]).toMatch(/struct Params/);
      expect(checkSpec(spec, edit('pixels: u32, threshold: f32', 'threshold: f32, pixels: u32'))[0]).toMatch(/struct Params/);
      expect(checkSpec(spec, edit('pixels: u32, threshold: f32', 'pixels: i32, threshold: f32'))[0]).toMatch(/struct Params/);
      expect(checkSpec(spec, edit('pixels: u32, threshold: f32', 'pixels: u32'))[0]).toMatch(/struct Params/);
      expect(checkSpec(spec, edit('pixels: u32, threshold: f32', 'pixels: u32, threshold: f32, pad0: u32')).join('\n')).toMatch(/padding field pad0/);
      expect(checkSpec(spec, edit('pixels: u32, threshold: f32', 'pixels: u32, threshold: vec2<f32>')).join('\n')).toMatch(/not a 4-byte scalar/);
    });
    it('a storage binding moved, dropped or added', () => {
      expect(checkSpec({ ...spec, bindings: ['scores', 'mask'] }, shaders).join('\n')).toMatch(/binding 3 \(thresholds\) is used/);
      expect(checkSpec({ ...spec, bindings: ['scores', null, 'mask', 'thresholds'] }, shaders).join('\n')).toMatch(/binding 2 \(mask\)/);
      expect(checkSpec({ ...spec, bindings: ['scores', 'mask', 'thresholds', 'extra'] }, shaders).join('\n')).toMatch(/uses no binding 4/);
      const global = allKernels.find((s) => s.name === 'binarize.thresholdGlobal')!;
      expect(checkSpec({ ...global, bindings: ['scores', 'mask', 'thresholds'] }, shaders).join('\n')).toMatch(/uses no binding 3/);
    });
    it('a helper function\'s use of a binding counts for its entry point', () => {
      // geometry.wgsl's isValid() reads validPx (binding 2): planeDepth uses it only through the helper.
      const depth = allKernels.find((s) => s.name === 'geometry.planeDepth')!;
      expect(checkSpec({ ...depth, bindings: ['points', null, null, 'feat'] }, shaders).join('\n')).toMatch(/binding 2 \(validPx\) is used/);
    });
  });
});

describe('every spec binds on the real device', () => {
  let gpu: Gpu;
  beforeAll(async () => {
    gpu = await testGpu();
  });

  it('pipeline, packed uniform and bind group of each spec pass Dawn validation', async () => {
    const errors: string[] = [];
    for (const spec of allKernels) {
      const params = Object.fromEntries((spec.params ?? []).map(([n]) => [n, 1]));
      const buffers = Object.fromEntries(spec.bindings.filter((b): b is string => b !== null).map((b) => [b, gpu.alloc(4)]));
      gpu.device.pushErrorScope('validation');
      gpu.run(spec, params, buffers, 0); // no workgroups: compiles, packs and binds, computes nothing
      gpu.flush();
      const error = await gpu.device.popErrorScope();
      if (error) errors.push(`${spec.name}: ${error.message.split('\n')[0]}`);
      gpu.release(...Object.values(buffers));
    }
    await gpu.sync();
    expect(errors).toEqual([]);
  }, 120_000);
});
