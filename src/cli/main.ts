// cramlab CLI. Each file in ./commands exports `command: Command`; this file only dispatches,
// so adding a command never touches it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkNumbers, checkShape, editDistance, flagsOfUsage, parseArgs, UsageError, type Args } from './args';
import { clean } from '../io/files';

export interface Command {
  name: string;
  summary: string;
  usage: string;
  booleans?: string[];
  run(args: Args): Promise<void>;
}

function loadCommands(): Map<string, Command> {
  const dir = path.join(__dirname, 'commands');
  const out = new Map<string, Command>();
  for (const f of fs.readdirSync(dir).sort()) {
    if (!/\.(ts|js)$/.test(f) || f.endsWith('.d.ts')) continue;
    const mod = require(path.join(dir, f));
    if (mod.command) out.set(mod.command.name, mod.command);
  }
  return out;
}

function help(commands: Map<string, Command>): string {
  const lines = ['cramlab: cram text into [mem] vectors of a frozen LM and decode it back', '', 'commands:'];
  for (const c of commands.values()) lines.push(`  ${c.name.padEnd(10)} ${c.summary}`);
  lines.push('', "'cramlab COMMAND --help' shows a command's options.");
  return lines.join('\n');
}

// The flags a command accepts are the ones its usage line names (-o also as --out).
function knownFlags(cmd: Command): string[] {
  const flags = flagsOfUsage(cmd.usage);
  return flags.includes('o') ? [...flags, 'out'] : flags;
}

// Errors reach users as one line, whatever the thrower put in the message, with any control
// characters from files (tensor names, metadata) shown escaped rather than sent to the terminal.
const oneLine = (e: Error): string =>
  clean(
    String(e?.message ?? e)
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .join(' ') || String(e),
  );

export async function main(argv: string[]): Promise<number> {
  const commands = loadCommands();
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(help(commands));
    return name ? 0 : 1;
  }
  const cmd = commands.get(name);
  if (!cmd) {
    const near = [...commands.keys()].map((k) => ({ k, d: editDistance(name, k) })).sort((a, b) => a.d - b.d)[0];
    const hint = near && near.d <= Math.max(2, Math.floor(name.length / 3)) ? `; did you mean '${near.k}'?` : '';
    console.error(`cramlab: unknown command '${name}'${hint}\n\n${help(commands)}`);
    return 2;
  }
  try {
    const args = parseArgs(rest, ['help', ...(cmd.booleans ?? [])], knownFlags(cmd));
    if (args.help) {
      console.log(`usage: cramlab ${cmd.usage}\n\n${cmd.summary}`);
      return 0;
    }
    checkNumbers(args);
    checkShape(args, cmd.usage);
    await cmd.run(args);
    return Number(process.exitCode ?? 0); // a command that finished but failed its check (encode, cram --progressive)
  } catch (e) {
    // One line naming the problem; the stack only on request.
    const err = e as Error;
    console.error(`cramlab ${name}: ${oneLine(err)}`);
    if (process.env.CRAMLAB_DEBUG) console.error(err.stack);
    return err instanceof UsageError ? 2 : 1;
  }
}

/** Run the CLI on process.argv and exit with its code: what bin/cramlab.js calls, however it was reached
 * (npx, npm exec, a global or symlinked bin: argv[1] is then `.bin/cramlab`, so no name check here). */
export function runCli(): void {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      console.error(`cramlab: ${oneLine(e as Error)}`);
      process.exit(1);
    },
  );
}

if (require.main === module) runCli();
