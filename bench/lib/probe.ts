import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { writeHeapSnapshot } from 'node:v8';

/**
 * Preloaded (`--import`) into a server under test that was spawned with an
 * IPC channel and `--expose-gc`, so the harness can look inside without any
 * change to the service: on request it collects garbage and reports
 * process.memoryUsage(), starts and stops a CPU profile of exactly the
 * measured run, measures event-loop delay over it, or writes a heap
 * snapshot. It does nothing unless asked.
 */
type Request =
  | { type: 'bench:memory'; id: number }
  | { type: 'bench:profile-start'; id: number }
  | { type: 'bench:profile-stop'; id: number; path: string }
  | { type: 'bench:loop-delay-start'; id: number }
  | { type: 'bench:loop-delay-stop'; id: number }
  | { type: 'bench:heap-snapshot'; id: number; path: string };

const isRequest = (message: unknown): message is Request =>
  typeof message === 'object' &&
  message !== null &&
  typeof (message as { type?: unknown }).type === 'string' &&
  (message as { type: string }).type.startsWith('bench:');

let session: Session | undefined;
let loopDelay: ReturnType<typeof monitorEventLoopDelay> | undefined;

async function answer(request: Request): Promise<Record<string, unknown>> {
  switch (request.type) {
    case 'bench:memory':
      // Two passes: the first may only queue finalizers (e.g. of closed sockets).
      globalThis.gc?.();
      globalThis.gc?.();
      return { usage: process.memoryUsage(), gc: typeof globalThis.gc === 'function' };
    case 'bench:profile-start':
      session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      // 1 ms, as --cpu-prof samples.
      await session.post('Profiler.setSamplingInterval', { interval: 1000 });
      await session.post('Profiler.start');
      return {};
    case 'bench:profile-stop': {
      if (!session) throw new Error('no profile was started');
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(request.path, JSON.stringify(profile));
      session.disconnect();
      session = undefined;
      return { path: request.path };
    }
    case 'bench:heap-snapshot':
      // Blocks the process for seconds and needs memory of its own: only after the measurements.
      return { path: writeHeapSnapshot(request.path) };
    case 'bench:loop-delay-start':
      // How late a 10 ms timer fires: a blocked event loop (a long synchronous SQLite call, GC) shows here.
      loopDelay?.disable();
      loopDelay = monitorEventLoopDelay({ resolution: 10 });
      loopDelay.enable();
      return {};
    case 'bench:loop-delay-stop': {
      if (!loopDelay) throw new Error('event-loop delay was not being measured');
      loopDelay.disable();
      // The histogram holds the timer's whole interval; the delay is what exceeds the 10 ms.
      const ms = (ns: number) => Math.max(0, ns / 1e6 - 10);
      const result = { p50: ms(loopDelay.percentile(50)), p99: ms(loopDelay.percentile(99)), max: ms(loopDelay.max) };
      loopDelay = undefined;
      return { loopDelayMs: result };
    }
  }
}

if (process.send) {
  process.on('message', (message: unknown) => {
    if (!isRequest(message)) return;
    answer(message).then(
      (result) => process.send?.({ type: message.type, id: message.id, ...result }),
      (error: unknown) => process.send?.({ type: message.type, id: message.id, error: String(error) }),
    );
  });
  // The probe must not keep the server alive once it wants to exit,
  process.channel?.unref();
  // and a server whose harness died (even by SIGKILL) must not live on as an orphan.
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}
