/** `--name=value` flags; each benchmark reads its own with typed defaults. */
export type Flags = ReadonlyMap<string, string>;

/** The flag for an option: tickMs <- --tick-ms. */
export const flagName = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export function parseCommandLine(argv: string[]): { positional: string[]; flags: Map<string, string> } {
  const positional: string[] = [];
  const flags = new Map<string, string>();
  for (const arg of argv) {
    const match = /^--([a-z][a-z0-9-]*)(?:=(.*))?$/.exec(arg);
    if (match) flags.set(match[1]!, match[2] ?? 'true');
    else positional.push(arg);
  }
  return { positional, flags };
}

/**
 * The defaults, overridden by flags of the same name (see flagName). Numbers and booleans are parsed by the default's type.
 */
export function readOptions<T extends Record<string, number | boolean>>(defaults: T, flags: Flags): T {
  const options: Record<string, number | boolean> = { ...defaults };
  for (const [key, fallback] of Object.entries(defaults)) {
    const raw = flags.get(flagName(key));
    if (raw === undefined) continue;
    if (typeof fallback === 'boolean') options[key] = raw !== 'false';
    else {
      const value = Number(raw);
      if (!Number.isFinite(value) || value < 0) throw new Error(`--${key} must be a non-negative number, got ${raw}`);
      options[key] = value;
    }
  }
  return options as T;
}
