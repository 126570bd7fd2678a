import type { Command } from 'commander';
import { UsageError } from '../errors.js';

/**
 * `--data` and `--config` given before the command name (`portcullis --data DIR db import ...`), as
 * users of docker, trivy and git write them. They are handed to the command that runs, which keeps
 * its own flags: one given after the command name wins. Program options are read only before the
 * command name (commander's positional options); otherwise the program would take every `--data`
 * for itself, wherever it stood, and the command would never see its own.
 */
const GLOBAL_OPTIONS = [
  {
    flags: '--data <dir>',
    key: 'data',
    description: 'data folder, for the command that follows (env PORTCULLIS_DATA; default ./data)',
  },
  {
    flags: '--config <file>',
    key: 'config',
    description: 'configuration file, for the command that follows (default ./portcullis.yaml when present)',
  },
] as const;

export function addGlobalOptions(program: Command): Command {
  program.enablePositionalOptions();
  for (const o of GLOBAL_OPTIONS) program.option(o.flags, o.description);
  program.hook('preAction', (_program, command) => passGlobalOptions(program, command));
  return program;
}

function passGlobalOptions(program: Command, command: Command): void {
  for (const { key } of GLOBAL_OPTIONS) {
    const value: unknown = program.getOptionValue(key);
    if (value === undefined) continue;
    if (!command.options.some((o) => o.attributeName() === key)) {
      throw new UsageError('FLAG_INVALID', `--${key} does not apply to "${commandPath(command)}"`);
    }
    if (command.getOptionValue(key) === undefined) command.setOptionValue(key, value);
  }
}

function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}
