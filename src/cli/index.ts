// First: it sets how zod compiles parsers before any schema is made (see one-shot.ts).
import { exitWhenFlushed } from './one-shot.js';
import { Command, CommanderError } from 'commander';
import { GENERATOR_VERSION } from '../analyse/index.js';
import { PortcullisError } from '../errors.js';
import { printableLines } from '../terminal-text.js';
import { addDbCommands } from './db-command.js';
import { addGlobalOptions } from './global-options.js';
import { addServeCommand } from './serve-command.js';
import { addAdminCommands } from './admin-commands.js';
import { addMaintenanceCommands } from './maintenance-commands.js';
import { addPolicyCommands } from './policy-command.js';
import { addScanOptions, addVulnerabilityOptions, runScan } from './scan-command.js';

export interface MainOptions {
  /**
   * This process exists only to run this command (the `portcullis` launcher): a finished scan or
   * sbom may then end it at once rather than wait for Node's teardown (one-shot.ts).
   */
  standalone?: boolean;
}

/** Exit codes: 0 success, 1 policy failure (findings with --exit-code/--fail-on, a failing policy verdict), 2 any error. */
export async function main(argv: string[], options: MainOptions = {}): Promise<number> {
  const program = new Command();
  let exitCode = 0;
  program
    .name('portcullis')
    .description('Secure-by-default container supply chain: scan images, list their packages, guard a registry.')
    .version(GENERATOR_VERSION)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  addGlobalOptions(program);

  addVulnerabilityOptions(
    addScanOptions(program.command('scan').description('analyse an image: its packages and their known vulnerabilities'), 'scan'),
  ).action(async (image: string, flags) => {
    exitCode = await runScan(image, flags, { vulnerabilities: true });
    if (options.standalone) await exitWhenFlushed(exitCode);
  });
  addScanOptions(program.command('sbom').description('write the software bill of materials of an image'), 'sbom').action(
    async (image: string, flags) => {
      exitCode = await runScan(image, flags);
      if (options.standalone) await exitWhenFlushed(exitCode);
    },
  );

  addDbCommands(program);
  addServeCommand(program);
  addAdminCommands(program);
  addMaintenanceCommands(program, (code) => {
    exitCode = code;
  });
  addPolicyCommands(program, (code) => {
    exitCode = code;
  });

  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? 0 : 2;
    }
    const message = err instanceof PortcullisError || err instanceof Error ? err.message : String(err);
    // Messages quote what registries and images sent; none of it may drive the terminal.
    process.stderr.write(`portcullis: ${printableLines(message)}\n`);
    if (process.env.PORTCULLIS_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return 2;
  }
}
