/**
 * Flags for the benchmark scripts: node:util parseArgs in strict mode, `--help` printing the
 * script's usage, and a misspelt flag or a bad value refused with that usage (exit 2) rather than
 * ignored, so a typo never runs (or writes results for) something other than what was asked.
 */
import { parseArgs, ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Exits 2 with `message` and the usage. */
export function refuse(script: string, usage: string, message: string): never {
  process.stderr.write(`${script}: ${message}\n\n${usage}\n`);
  process.exit(2);
}

/** The parsed flags of `script` (no positionals); `--help` prints `usage` and exits 0. */
export function benchArgs(script: string, usage: string, options: Options, argv = process.argv.slice(2)): Record<string, string | boolean | undefined> {
  if (argv.includes('--help') || argv.includes('-h')) { process.stdout.write(`${usage}\n`); process.exit(0); }
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as Record<string, string | boolean | undefined>;
  } catch (e) {
    return refuse(script, usage, (e as Error).message);
  }
}

/** A comma-separated list whose every item is one of `allowed`. */
export function listOf(script: string, usage: string, flag: string, value: string, allowed: readonly string[]): string[] {
  const items = value.split(',').filter((s) => s !== '');
  if (!items.length) refuse(script, usage, `--${flag}: expected a comma-separated list of ${allowed.join(', ')}`);
  for (const k of items) if (!allowed.includes(k)) refuse(script, usage, `--${flag}: unknown '${k}' (one of ${allowed.join(', ')})`);
  return items;
}
