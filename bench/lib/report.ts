import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Machine } from './conditions.ts';
import { ROOT } from './processes.ts';

export interface Table {
  title?: string;
  columns: string[];
  rows: Array<Array<string | number>>;
}

/** What one benchmark hands back: conditions, tables to print, and its raw numbers for the JSON file. */
export interface BenchResult {
  name: string;
  title: string;
  conditions: Record<string, string | number>;
  tables: Table[];
  notes: string[];
  /** A benchmark with failures (non-2xx, missing frames, dropped sockets) makes the whole run exit 1. */
  failures: string[];
  data: unknown;
}

export interface Report {
  startedAt: string;
  finishedAt: string;
  command: string;
  /** Which code was measured (see serviceUnderTest). */
  service: string;
  machine: Machine;
  results: BenchResult[];
}

export function renderMarkdown(report: Report): string {
  const m = report.machine;
  const lines = [
    `# Navi benchmarks, ${report.startedAt}`,
    '',
    `\`${report.command}\``,
    '',
    `Service: ${report.service}`,
    '',
    `Node ${m.node} · ${m.cpuModel} · ${m.cores} cores · ${m.memoryGiB} GiB · Linux ${m.kernel} · ` +
      `load average ${m.loadAverage1m} at start · open files ${m.openFileLimit} · ephemeral ports ${m.ephemeralPorts}`,
  ];
  for (const result of report.results) {
    lines.push('', `## ${result.title}`, '');
    lines.push(result.failures.length === 0 ? '**PASS**' : `**FAIL**\n\n${result.failures.map((f) => `- ${f}`).join('\n')}`);
    lines.push('', 'Conditions:', '');
    for (const [key, value] of Object.entries(result.conditions)) lines.push(`- ${key}: ${value}`);
    for (const table of result.tables) lines.push('', ...renderTable(table));
    if (result.notes.length > 0) lines.push('', ...result.notes.map((note) => `> ${note}`));
  }
  return `${lines.join('\n')}\n`;
}

function renderTable(table: Table): string[] {
  const cells = [table.columns, ...table.rows.map((row) => row.map(String))];
  const widths = table.columns.map((_, i) => Math.max(3, ...cells.map((row) => (row[i] ?? '').length)));
  const line = (row: string[]) => `| ${row.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`;
  return [
    ...(table.title ? [`**${table.title}**`, ''] : []),
    line(table.columns),
    `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`,
    ...cells.slice(1).map((row) => line(row)),
  ];
}

const RESULTS_DIR = join(ROOT, 'bench/results');

/** A file in bench/results/ (gitignored), e.g. a CPU profile worth opening in a profiler. */
export function resultPath(name: string): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  return join(RESULTS_DIR, name);
}

/** bench/results/<timestamp>-<selection>.{json,md}. */
export function writeReport(report: Report, selection: string): { json: string; markdown: string } {
  const stem = resultPath(`${report.startedAt.replace(/[:.]/g, '-')}-${selection}`);
  const paths = { json: `${stem}.json`, markdown: `${stem}.md` };
  writeFileSync(paths.json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(paths.markdown, renderMarkdown(report));
  return paths;
}
