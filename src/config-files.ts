import { X509Certificate } from 'node:crypto';
import { accessSync, constants, readFileSync, statSync, type Stats } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { signingKeyProblem } from './push/apns/provider-token.ts';

/**
 * Checks of the files the configuration names, run by loadConfig so that a
 * missing or wrong file stops the start with one line naming the variable,
 * rather than a stack trace from deep inside the first component that opens
 * it. Each returns the end of that line ("no such file", "is not a PEM
 * private key ..."), or undefined when the file will do.
 */

/** An APNs .p8 key is about 250 bytes; anything this large is some other file. */
const MAX_KEY_BYTES = 64 * 1024;
/** Generous: a full public CA bundle is about 250 KB. */
const MAX_CA_BYTES = 4 * 1024 * 1024;

export function apnsKeyFileProblem(path: string): string | undefined {
  const read = readNamedFile(path, MAX_KEY_BYTES);
  return 'problem' in read ? read.problem : signingKeyProblem(read.text);
}

export function caFileProblem(path: string): string | undefined {
  const read = readNamedFile(path, MAX_CA_BYTES);
  if ('problem' in read) return read.problem;
  const blocks = read.text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) return 'holds no PEM certificate (expected "-----BEGIN CERTIFICATE-----")';
  for (const [index, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch {
      return blocks.length === 1
        ? 'holds a PEM certificate that does not parse'
        : `certificate ${index + 1} of ${blocks.length} does not parse`;
    }
  }
  return undefined;
}

/**
 * Whether the service can open (or create) a SQLite database at `path`,
 * judged without creating anything: the file, if it exists, must be a
 * readable and writable file; otherwise the nearest existing ancestor must
 * be a directory the service can write into (the data directory is created
 * at start).
 */
export function sqlitePathProblem(path: string): string | undefined {
  if (path === ':memory:') return undefined;
  const existing = statOrUndefined(path);
  if (existing !== undefined) {
    if (existing.isDirectory()) return 'is a directory; give the path of the database file inside it';
    if (!existing.isFile()) return 'is not a regular file';
    return accessProblem(path, constants.R_OK | constants.W_OK, 'cannot be read and written (permission denied)');
  }
  let ancestor = dirname(path);
  let stats = statOrUndefined(ancestor);
  while (stats === undefined && dirname(ancestor) !== ancestor) {
    ancestor = dirname(ancestor);
    stats = statOrUndefined(ancestor);
  }
  if (stats === undefined) return undefined;
  if (!stats.isDirectory()) return `cannot be created: ${ancestor} is not a directory`;
  return accessProblem(ancestor, constants.W_OK | constants.X_OK, `cannot be created: ${ancestor} is not writable`);
}

function readNamedFile(path: string, maxBytes: number): { text: string } | { problem: string } {
  let stats: Stats;
  try {
    stats = statSync(path);
  } catch (error) {
    return { problem: fileErrorProblem(path, error) };
  }
  if (stats.isDirectory()) return { problem: 'is a directory, not a file' };
  if (!stats.isFile()) return { problem: 'is not a regular file' };
  if (stats.size === 0) return { problem: 'is empty' };
  if (stats.size > maxBytes) return { problem: `is ${stats.size} bytes, far too large for what it should hold` };
  try {
    return { text: readFileSync(path, 'utf8') };
  } catch (error) {
    return { problem: fileErrorProblem(path, error) };
  }
}

function fileErrorProblem(path: string, error: unknown): string {
  const code = (error as { code?: unknown }).code;
  switch (code) {
    case 'ENOENT':
      // A relative path is resolved against the working directory, which is often not the one the operator thinks.
      return isAbsolute(path) ? 'no such file' : `no such file (looked for ${resolve(path)})`;
    case 'ENOTDIR':
      return 'no such file (a part of the path is not a directory)';
    case 'EACCES':
    case 'EPERM':
      return 'cannot be read (permission denied)';
    default:
      return `cannot be read (${typeof code === 'string' ? code : 'unknown error'})`;
  }
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

function accessProblem(path: string, mode: number, problem: string): string | undefined {
  try {
    accessSync(path, mode);
    return undefined;
  } catch {
    return problem;
  }
}
