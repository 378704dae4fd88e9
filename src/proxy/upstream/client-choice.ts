// Which HTTP/1.1 upstream client the proxy uses: the hand-written one (default) or node's http (TRELLIS_UPSTREAM_CLIENT=node, for comparison and as an escape hatch).

export type UpstreamClient = 'h1' | 'node';

export interface ClientChoice {
  client: UpstreamClient;
  /** Set when the variable holds something unknown (the default is used). */
  warning?: string;
}

/** Pure: the client named by the TRELLIS_UPSTREAM_CLIENT value. */
export function parseUpstreamClient(value: string | undefined): ClientChoice {
  const v = (value ?? '').trim().toLowerCase();
  if (v === '' || v === 'h1') return { client: 'h1' };
  if (v === 'node') return { client: 'node' };
  return { client: 'h1', warning: `TRELLIS_UPSTREAM_CLIENT=${JSON.stringify(value)} is not "h1" or "node": using the default (h1)` };
}

let warned = false;

/** The client for the handlers built now (read when a listener stack is built, not per request). */
export function upstreamClient(env: NodeJS.ProcessEnv = process.env): UpstreamClient {
  const c = parseUpstreamClient(env.TRELLIS_UPSTREAM_CLIENT);
  if (c.warning !== undefined && !warned) {
    warned = true;
    process.stderr.write(`trellis proxy: ${c.warning}\n`);
  }
  return c.client;
}
