/** The entry point `./navi` hands every command but start and test to (see cli.ts). */
import { runAdmin } from './cli.ts';

process.exitCode = await runAdmin(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
});
