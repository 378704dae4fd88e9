// Parses duration strings as Istio and Go write them ("1.5s", "100ms", "2m", "1h30m") into milliseconds.

const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };
const PART = /(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|µs|ns)/y;

/** Milliseconds for a duration string, or undefined if it is not one. A bare 0 is accepted as zero. */
export function parseDuration(v: unknown): number | undefined {
  if (typeof v !== 'string') return undefined;
  const s = v.trim();
  if (s === '0') return 0;
  if (s === '') return undefined;
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < s.length) {
    const start = PART.lastIndex;
    const m = PART.exec(s);
    if (!m || m.index !== start) return undefined;
    total += Number(m[1]) * UNIT_MS[m[2]];
  }
  return total;
}

/** Seconds for a duration string, or undefined. */
export function parseDurationSeconds(v: unknown): number | undefined {
  const ms = parseDuration(v);
  return ms === undefined ? undefined : ms / 1000;
}
