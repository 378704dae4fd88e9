// `trellis top`: the busiest routes, refreshed live (like top(1)); --once prints a single table.
import { CONTROL_OPTION, OUTPUT_OPTION, CliError, parseVerbArgs, printTable, wantsJson } from './common.js';
import { fetchStats, GOLDEN_HEADERS, goldenRow, unreachable } from './stat.js';
import type { StatsReport } from '../control/stats.js';

const HELP = `
Usage: trellis top [--interval S] [--rows N] [--window S] [--once] [-o json] [--control ADDR]

The busiest routes in the mesh (route name and destination service as the calling proxies
matched them), with rate, success, latency percentiles and mTLS share; refreshed every
--interval seconds until Ctrl-C. Errors by x-trellis-error code are listed under the table.

Options:
      --interval S     refresh period in seconds (default 2)
      --rows N         routes to show (default 20)
      --window S       averaging window in seconds (default 10)
      --once           print once and exit
  -o, --output json    print the routes as JSON (implies --once)
      --control ADDR   control plane HTTP API (default $TRELLIS_CONTROL or 127.0.0.1:15014)
  -h, --help           show this help
`;

function render(r: StatsReport, rows: number): void {
  const routes = r.routes.slice(0, rows);
  console.log(`trellis top — ${new Date(r.at).toLocaleTimeString()} — ${r.routes.length} route(s) with traffic over ${r.windowSeconds}s`);
  if (!routes.length) console.log('(no requests in the window)');
  else printTable(['ROUTE', 'SERVICE', 'SOURCE', ...GOLDEN_HEADERS, 'ERRORS'], routes.map((g) => [g.dims.route, g.dims.service, g.dims.source, ...goldenRow(g), Object.entries(g.errors).map(([c, n]) => `${c}:${n}`).join(' ') || '-']));
  for (const l of unreachable(r)) console.log(l);
}

export default async function top(argv: string[]): Promise<number> {
  const args = parseVerbArgs(
    argv,
    { ...OUTPUT_OPTION, ...CONTROL_OPTION, window: { type: 'string' }, interval: { type: 'string' }, rows: { type: 'string' }, once: { type: 'boolean' } },
    HELP,
    false,
  );
  if (!args) return 0;
  const json = wantsJson(args.values);
  const interval = Number(args.values.interval ?? 2);
  if (!Number.isFinite(interval) || interval < 0.2) throw new CliError(`--interval must be at least 0.2 seconds (got "${String(args.values.interval)}")`);
  const rows = Number(args.values.rows ?? 20);
  if (!Number.isInteger(rows) || rows <= 0) throw new CliError(`--rows must be a positive whole number (got "${String(args.values.rows)}")`);
  if (json) {
    const r = await fetchStats(args.values);
    console.log(JSON.stringify({ windowSeconds: r.windowSeconds, at: r.at, routes: r.routes.slice(0, rows) }, null, 2));
    return 0;
  }
  const tty = process.stdout.isTTY;
  for (;;) {
    const r = await fetchStats(args.values);
    if (tty && !args.values.once) process.stdout.write('\x1b[2J\x1b[H');
    render(r, rows);
    if (args.values.once) return 0;
    await new Promise((res) => setTimeout(res, interval * 1000));
    if (!tty) console.log('');
  }
}
