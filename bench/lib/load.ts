import autocannon, { type Options, type Result } from 'autocannon';

export interface LoadRun {
  result: Result;
  /** Every response time in ms (autocannon's own histogram rounds to whole milliseconds). */
  latenciesMs: Float64Array;
  /** CPU seconds this (load-generating) process used during the run. */
  generatorCpuSeconds: number;
}

/** One autocannon run, keeping exact response times. */
export function runLoad(options: Options): Promise<LoadRun> {
  const latencies: number[] = [];
  const cpuBefore = process.cpuUsage();
  return new Promise((resolve, reject) => {
    const instance = autocannon(options, (error, result) => {
      if (error) return reject(error);
      const cpu = process.cpuUsage(cpuBefore);
      resolve({ result, latenciesMs: Float64Array.from(latencies), generatorCpuSeconds: (cpu.user + cpu.system) / 1e6 });
    });
    instance.on('response', (_client, _status, _bytes, responseTime) => latencies.push(responseTime));
  });
}
