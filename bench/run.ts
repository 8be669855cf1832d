import { cleanUpNow, installCleanup } from './lib/cleanup.ts';
import { machine, serviceUnderTest } from './lib/conditions.ts';
import { flagName, parseCommandLine, type Flags } from './lib/options.ts';
import { renderMarkdown, writeReport, type BenchResult, type Report } from './lib/report.ts';
import { latencyDefaults, runLatencyBenchmark } from './latency.ts';
import { runScenarios, scenarioDefaults } from './scenarios.ts';
import { runSocketBenchmark, socketDefaults } from './sockets.ts';
import { runTapBenchmark, tapDefaults } from './taps.ts';

/**
 * `npm run bench [taps|latency|sockets|scenarios|all] [--flag=value ...]`
 *
 * Runs the selected benchmarks one after another, each against its own
 * freshly started server process(es), prints one report, and writes it to
 * bench/results/ as JSON and Markdown. Exits 1 when a benchmark failed its
 * correctness checks (non-2xx answers, missing frames, dropped sockets).
 */
const BENCHMARKS: Record<string, { run: (flags: Flags) => Promise<BenchResult>; defaults: object }> = {
  taps: { run: runTapBenchmark, defaults: tapDefaults },
  latency: { run: runLatencyBenchmark, defaults: latencyDefaults },
  sockets: { run: runSocketBenchmark, defaults: socketDefaults },
  scenarios: { run: runScenarios, defaults: scenarioDefaults },
};

function usage(): string {
  const flags = Object.entries(BENCHMARKS).map(
    ([name, { defaults }]) =>
      `  ${name.padEnd(9)} ${Object.entries(defaults)
        .map(([key, value]) => `--${flagName(key)}=${value}`)
        .join(' ')}`,
  );
  return [
    'usage: node bench/run.ts [taps|latency|sockets|scenarios|all] [--flag=value ...]',
    '',
    'flags and their defaults (a flag applies to every selected benchmark that has it):',
    ...flags,
    '',
    'BENCH_TMPDIR=<dir> puts the databases elsewhere than the OS temp dir (it must be a real disk).',
    'BENCH_SERVER=<path/to/src/server.ts> measures another checkout of the service (it needs node_modules beside it).',
  ].join('\n');
}

async function main(): Promise<number> {
  const { positional, flags } = parseCommandLine(process.argv.slice(2));
  if (flags.has('help')) {
    console.log(usage());
    return 0;
  }
  const selection = positional.length === 0 || positional.includes('all') ? Object.keys(BENCHMARKS) : positional;
  const unknown = selection.filter((name) => !(name in BENCHMARKS));
  if (unknown.length > 0) {
    console.error(`unknown benchmark: ${unknown.join(', ')}\n\n${usage()}`);
    return 2;
  }

  const known = new Set(selection.flatMap((name) => Object.keys(BENCHMARKS[name]!.defaults).map(flagName)));
  const stray = [...flags.keys()].filter((flag) => !known.has(flag));
  if (stray.length > 0) {
    console.error(`no selected benchmark takes --${stray.join(', --')}\n\n${usage()}`);
    return 2;
  }

  installCleanup();
  const startedAt = new Date().toISOString();
  const conditions = machine();
  const results: BenchResult[] = [];
  for (const name of selection) {
    console.error(`bench: ${name} ...`);
    const started = performance.now();
    try {
      results.push(await BENCHMARKS[name]!.run(flags));
    } catch (error) {
      // A benchmark that could not finish is reported as failed; the others still run.
      results.push(crashed(name, error));
    } finally {
      cleanUpNow();
    }
    console.error(`bench: ${name} took ${Math.round((performance.now() - started) / 1000)} s`);
  }

  const report: Report = {
    startedAt,
    finishedAt: new Date().toISOString(),
    command: `node bench/run.ts ${process.argv.slice(2).join(' ')}`.trim(),
    service: serviceUnderTest(),
    machine: conditions,
    results,
  };
  console.log(renderMarkdown(report));
  const paths = writeReport(report, positional.length === 0 ? 'all' : positional.join('-'));
  console.error(`bench: wrote ${paths.markdown} and ${paths.json}`);
  const failed = results.filter((r) => r.failures.length > 0);
  if (failed.length > 0) console.error(`bench: FAILED: ${failed.map((r) => r.name).join(', ')}`);
  return failed.length > 0 ? 1 : 0;
}

function crashed(name: string, error: unknown): BenchResult {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  return { name, title: `${name} (did not finish)`, conditions: {}, tables: [], notes: [], failures: [message], data: null };
}

process.exitCode = await main();
