import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export interface TestCertificate {
  /** PEM of a self-signed certificate valid for 127.0.0.1 and localhost; trust it as its own CA. */
  cert: string;
  /** PEM of its private key. */
  key: string;
}

let generated: Promise<TestCertificate> | undefined;

/**
 * A throwaway certificate for local TLS servers, made with the openssl CLI the
 * first time a test asks and reused by later ones in the same process (it is
 * read-only, so sharing it couples nothing). Nothing is written to the repository.
 */
export function localhostCertificate(): Promise<TestCertificate> {
  generated ??= generate();
  return generated;
}

async function generate(): Promise<TestCertificate> {
  const dir = await mkdtemp(join(tmpdir(), 'navi-tls-'));
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  try {
    await promisify(execFile)('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ]);
    return { cert: await readFile(certPath, 'utf8'), key: await readFile(keyPath, 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
