// `describe` shows the effective Mesh defaults (and retry budget), and traffic policies name Mesh-supplied values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { meshDefaultsView, trafficPolicyView } from '../../src/control/describe.js';
import { meshSettings } from '../../src/control/mesh.js';
import type { Resource } from '../../src/api/types.js';

const mesh = (spec: Record<string, unknown>): Resource => ({ apiVersion: 'trellis.dev/v1alpha1', kind: 'Mesh', metadata: { name: 'm', namespace: 'trellis-system' }, spec }) as Resource;

test('describe: built-in values when the Mesh sets no defaults', () => {
  assert.deepEqual(meshDefaultsView(meshSettings([])), {
    timeout: 'none (built-in)',
    retries: 'none (built-in)',
    retryBudget: '20% of requests + 10/s over 10s (built-in)',
    connectTimeout: '10s (built-in)',
    idleTimeout: '4s (built-in)',
  });
});

test('describe: the Mesh defaults, and traffic policies name them unless a DestinationRule sets its own', () => {
  const m = meshSettings([mesh({ defaults: { timeout: '2s', connectTimeout: '300ms', idleTimeout: '1m', retries: { attempts: 2, retryOn: '5xx,non-idempotent' }, retryBudget: { retryRatio: 5 } } })]);
  assert.deepEqual(meshDefaultsView(m), {
    timeout: '2s',
    retries: '2 on 5xx (idempotent requests only)',
    retryBudget: '5% of requests + 10/s over 10s',
    connectTimeout: '300ms',
    idleTimeout: '1m',
  });
  const none = trafficPolicyView({}, 'none (defaults)', 80, undefined, m);
  assert.equal(none.connectTimeout, '300ms (Mesh default)');
  assert.equal(none.idleTimeout, '1m (Mesh default)');
  const own = trafficPolicyView({ connectionPool: { tcp: { connectTimeout: '1s' }, http: { idleTimeout: '5s' } } }, 'DestinationRule d/r', 80, undefined, m);
  assert.equal(own.connectTimeout, '1s');
  assert.equal(own.idleTimeout, '5s');
});

test('describe text: the service view prints the Mesh defaults block', async () => {
  const { formatService } = await import('../../src/cli/describe.js');
  const m = meshSettings([mesh({ defaults: { timeout: '2s', retryBudget: { retryRatio: 5 } } })]);
  const lines = formatService(
    { namespace: 'default', name: 'r', fqdn: 'r.default.svc.cluster.local', source: 'Service', ports: [], routing: [], destinationRule: undefined, trafficPolicies: [], meshDefaults: meshDefaultsView(m), endpoints: [], warnings: [] } as never,
    false,
  );
  assert.ok(lines.includes('  Mesh defaults (where routes and destination rules set nothing):'), lines.join('\n'));
  assert.ok(lines.some((l) => l === '    timeout 2s; retries none (built-in)'), lines.join('\n'));
  assert.ok(lines.some((l) => l.startsWith('    retry budget 5% of requests + 10/s over 10s; connect timeout 10s (built-in)')), lines.join('\n'));
});
