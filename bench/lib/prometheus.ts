/** A Prometheus histogram read from the text exposition format (unlabelled series only). */
export interface Histogram {
  sum: number;
  count: number;
  /** Cumulative counts by upper bound, as exposed ("+Inf" last). */
  buckets: Array<{ le: string; count: number }>;
}

export function readHistogram(text: string, name: string): Histogram {
  const value = (line: string) => Number(line.slice(line.lastIndexOf(' ') + 1));
  const histogram: Histogram = { sum: 0, count: 0, buckets: [] };
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}_sum`)) histogram.sum = value(line);
    else if (line.startsWith(`${name}_count`)) histogram.count = value(line);
    else if (line.startsWith(`${name}_bucket{`)) {
      const le = /le="([^"]+)"/.exec(line)?.[1];
      if (le !== undefined) histogram.buckets.push({ le, count: value(line) });
    }
  }
  return histogram;
}

/** What was observed between two scrapes of the same histogram. */
export function histogramDelta(before: Histogram, after: Histogram): Histogram {
  return {
    sum: after.sum - before.sum,
    count: after.count - before.count,
    buckets: after.buckets.map((bucket, i) => ({ le: bucket.le, count: bucket.count - (before.buckets[i]?.count ?? 0) })),
  };
}

/** Per-bucket (not cumulative) counts of an integer-valued histogram, labelled as ranges: "3-4": 17. */
export function bucketRanges(histogram: Histogram): Array<{ range: string; count: number }> {
  let previousLe = '0';
  let previousCount = 0;
  return histogram.buckets.map(({ le, count }) => {
    const low = Number(previousLe) + 1;
    const range = le === '+Inf' ? `>${previousLe}` : previousLe === '0' ? `<=${le}` : low === Number(le) ? le : `${low}-${le}`;
    const entry = { range, count: count - previousCount };
    previousLe = le;
    previousCount = count;
    return entry;
  });
}

/** A plain gauge or counter value (unlabelled). */
export function readValue(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}
