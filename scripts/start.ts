/**
 * The start command (`npm start`, `npm run dev`, `./navi start`): the service,
 * in this process, with logs for people when a person is watching. When
 * stdout is a terminal, NODE_ENV is not production, LOG_FORMAT is not set
 * and the development dependency pino-pretty is installed, it asks for
 * LOG_FORMAT=pretty; otherwise the logs stay JSON lines, as everywhere else
 * (a process manager, a container, a pipe into jq).
 */
const env = process.env;
if (!env.LOG_FORMAT && process.stdout.isTTY && env.NODE_ENV !== 'production' && installed('pino-pretty')) {
  env.LOG_FORMAT = 'pretty';
}
await import('../src/server.ts');

function installed(specifier: string): boolean {
  try {
    import.meta.resolve(specifier);
    return true;
  } catch {
    return false;
  }
}
