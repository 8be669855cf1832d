import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { NAVI_SERVER, ROOT, type ServerProcess } from './processes.ts';
import { resultPath, type Table } from './report.ts';
import { fixed } from './stats.ts';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

/** The fields of a V8 .cpuprofile (as written by --cpu-prof) that self time needs. */
interface CpuProfile {
  nodes: Array<{ id: number; callFrame: CallFrame; hitCount?: number; children?: number[] }>;
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  /** Share of samples in which the process was doing something (not idle). */
  busyPercent: number;
  /** Self time by where the code lives: src/<file>, a node_modules package, node internals, GC. */
  byArea: Array<{ area: string; percentOfBusy: number }>;
  /** The hottest functions by self time. */
  topFunctions: Array<{ function: string; location: string; percentOfBusy: number }>;
  /**
   * Time charged to the innermost function of the service (src/) on the
   * stack, libraries and natives beneath it included: which of the service's
   * own steps the CPU goes to (e.g. a SQL statement's run is charged to the
   * repo function that issued it). See owningFrame for stacks without one.
   */
  bySourceFunction: Array<{ function: string; location: string; percentOfBusy: number }>;
}

/** Self time from a CPU profile, grouped so a reader sees where a request's CPU goes. */
export function summarizeProfile(path: string, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  let total = 0;
  let idle = 0;
  const byArea = new Map<string, number>();
  const byFunction = new Map<string, { function: string; location: string; hits: number }>();
  const bySource = new Map<string, { function: string; location: string; hits: number }>();
  const parent = new Map<number, number>();
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const add = (map: typeof byFunction, frame: CallFrame, hits: number) => {
    const location = frame.url ? `${shortPath(frame.url)}:${frame.lineNumber + 1}` : '';
    const key = `${frame.functionName}@${location}`;
    const entry = map.get(key) ?? { function: frame.functionName || '(anonymous)', location, hits: 0 };
    entry.hits += hits;
    map.set(key, entry);
  };
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0) continue;
    total += hits;
    const { functionName, url } = node.callFrame;
    if (functionName === '(idle)') {
      idle += hits;
      continue;
    }
    const area = areaOf(functionName, url);
    byArea.set(area, (byArea.get(area) ?? 0) + hits);
    add(byFunction, node.callFrame, hits);
    add(
      bySource,
      owningFrame(node, (id) => nodes.get(parent.get(id) ?? -1)),
      hits,
    );
  }
  const busy = Math.max(1, total - idle);
  const pct = (hits: number) => Math.round((hits / busy) * 1000) / 10;
  return {
    busyPercent: total === 0 ? 0 : Math.round(((total - idle) / total) * 1000) / 10,
    byArea: [...byArea]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([area, hits]) => ({ area, percentOfBusy: pct(hits) })),
    topFunctions: [...byFunction.values()]
      .sort((a, b) => b.hits - a.hits)
      .slice(0, top)
      .map((f) => ({ function: f.function, location: f.location, percentOfBusy: pct(f.hits) })),
    bySourceFunction: [...bySource.values()]
      .sort((a, b) => b.hits - a.hits)
      .slice(0, top)
      .map((f) => ({ function: f.function, location: f.location, percentOfBusy: pct(f.hits) })),
  };
}

type ProfileNode = CpuProfile['nodes'][number];

/**
 * The innermost service frame on the stack; without one (e.g. Kysely
 * committing a transaction after the service's callback returned), the
 * innermost JavaScript frame, so that native time is still charged to a name.
 */
function owningFrame(node: ProfileNode, parentOf: (id: number) => ProfileNode | undefined): CallFrame {
  const library: CallFrame[] = [];
  for (let current: ProfileNode | undefined = node; current; current = parentOf(current.id)) {
    const frame = current.callFrame;
    if (isServiceCode(frame.url)) return frame;
    if (frame.url && frame.functionName && library.length < 2) library.push(frame);
  }
  const [inner, outer] = library;
  if (!inner) return node.callFrame;
  // Two names say more than one: "executeQuery <- commitTransaction".
  return outer ? { ...inner, functionName: `${inner.functionName} <- ${outer.functionName}` } : inner;
}

const SOURCE_DIR = pathToFileURL(join(dirname(NAVI_SERVER), '/')).href;
const isServiceCode = (url: string) => url.startsWith(SOURCE_DIR);

function areaOf(functionName: string, url: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const path = shortPath(url);
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)?.[1];
  if (pkg) return pkg;
  return path;
}

function shortPath(url: string): string {
  if (!url.startsWith('file:')) return url;
  const path = relative(ROOT, fileURLToPath(url));
  const pkg = path.lastIndexOf('node_modules/');
  return pkg >= 0 ? path.slice(pkg) : path;
}

export type SavedProfile = ProfileSummary & { path: string };

/** Stops the profile started with server.startProfile(), keeps the file in bench/results/, and summarises it. */
export async function saveProfile(server: ServerProcess, name: string): Promise<SavedProfile> {
  const path = await server.stopProfile(resultPath(`${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`));
  return { path, ...summarizeProfile(path) };
}

export function profileTables(profile: ProfileSummary): Table[] {
  const rows = (list: ProfileSummary['topFunctions']) => list.map((f) => [f.function, f.location, fixed(f.percentOfBusy, 1)]);
  return [
    {
      title: `Service CPU profile of the measured run (busy in ${profile.busyPercent}% of samples): self time by area`,
      columns: ['area', '% of busy'],
      rows: profile.byArea.map((a) => [a.area, fixed(a.percentOfBusy, 1)]),
    },
    {
      title:
        'Time by the innermost service function on the stack, library and native calls beneath it included (else the innermost library function)',
      columns: ['function', 'location', '% of busy'],
      rows: rows(profile.bySourceFunction),
    },
    { title: 'Hottest functions by self time', columns: ['function', 'location', '% of busy'], rows: rows(profile.topFunctions) },
  ];
}

export const profileNote = (profile: SavedProfile) =>
  `CPU profile of the measured run: ${profile.path} (open it in Chrome DevTools or speedscope). A synchronous SQLite call (better-sqlite3) counts as busy time of its JavaScript caller, fsync included.`;
