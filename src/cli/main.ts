// The `ttt` command: one module per subcommand under src/cli/. Expected failures (bad input, bad
// options) print one line naming the problem and exit 2; a database another process holds prints one line
// and exits 1; anything else exits 1 with the stack.

import { TttError } from '../core/errors.ts';
import { DataDirInUseError } from '../dataLock.ts';
import { registerMobileNet } from '../models/mobilenet.ts';
import { registerResnet50 } from '../models/resnet50.ts';

interface Command {
  summary: string;
  run(argv: string[]): Promise<void>;
}

const commands: Record<string, () => Promise<Command>> = {
  segment: async () => (await import('./segment.ts')).command,
  bench: async () => (await import('./bench.ts')).command,
  synth: async () => (await import('./synth.ts')).command,
  eval: async () => (await import('./eval.ts')).command,
  bank: async () => (await import('./bank.ts')).command,
  score: async () => (await import('./score.ts')).command,
  keys: async () => (await import('./keys.ts')).command,
};

function usage(): string {
  return [
    'usage: ttt <command> [options]',
    '',
    'commands:',
    ...Object.keys(commands).map((c) => `  ${c}`),
    '',
    'Run `ttt <command> --help` for the options of one command.',
  ].join('\n');
}

async function main(): Promise<void> {
  const [name, ...rest] = process.argv.slice(2);
  if (!name || name === '--help' || name === '-h') {
    console.log(usage());
    return;
  }
  const load = commands[name];
  if (!load) {
    console.error(`ttt: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    process.exit(2);
  }
  // The pretrained network's weights are the host's to provide; any command may use the mobilenetv2
  // extractor or the built-in scorer.
  registerMobileNet();
  registerResnet50();
  const command = await load();
  await command.run(rest);
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (e: unknown) => {
    if (e instanceof TttError) {
      console.error(`ttt: ${e.message} [${e.code}]`);
      process.exit(2);
    }
    // The command is right but cannot run now: one line saying why and what to do, no stack.
    if (e instanceof DataDirInUseError) {
      console.error(`ttt: ${e.message}`);
      process.exit(1);
    }
    console.error(e);
    process.exit(1);
  },
);
