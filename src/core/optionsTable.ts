// The options as a Markdown table, for the README (kept in sync by a test).

import { OPTION_SPECS } from './options.ts';

export function optionsMarkdown(): string {
  const kind = (s: (typeof OPTION_SPECS)[number]): string => {
    const k = s.kind;
    switch (k.type) {
      case 'int':
        return `integer ${k.min}..${k.max}`;
      case 'number':
        return `number ${k.exclusiveMin ? '(' : '['}${k.min}, ${k.max}]`;
      case 'bool':
        return 'true / false';
      case 'enum':
        return k.values.join(' / ');
      case 'list':
        return `list of up to ${k.maxItems} numbers in [${k.min}, ${k.max}]`;
      case 'names':
        return k.values ? `list of up to ${k.maxItems} of ${k.values.join(' / ')}` : `list of up to ${k.maxItems} names`;
    }
  };
  const rows = OPTION_SPECS.map((s) => `| \`${s.key}\` | ${Array.isArray(s.default) ? s.default.join(',') : String(s.default)} | ${kind(s)} | ${s.doc} |`);
  return ['| key | default | values | meaning |', '|---|---|---|---|', ...rows].join('\n');
}
