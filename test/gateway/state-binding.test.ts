import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { boundTo, type GatewayState, type StateBinding } from '../../src/gateway/mrtr.js';

// A requestState is spent only by the call it was minted for. The end-to-end tests change one field
// at a time through real servers (test/adversarial/stdio-era, gateway/multi-upstream,
// dashboard/tenant-approvals); this checks every field, and every absent-or-present mix, directly.

const FIELDS = ['tool', 'argsHash', 'identity', 'upstream', 'tenant'] as const;
const text = fc.string({ maxLength: 6 });
const binding: fc.Arbitrary<StateBinding> = fc.record(
  { tool: text, argsHash: text, identity: text, upstream: fc.option(text, { nil: undefined }), tenant: fc.option(text, { nil: undefined }) },
  { requiredKeys: ['tool', 'argsHash', 'identity'] },
);
const state = (b: StateBinding): GatewayState => ({ ...b, policy: 'p', exp: 0 });

test('a requestState is bound to its call: equal on every field, or refused', () => {
  fc.assert(fc.property(binding, (b) => boundTo(state(b), { ...b })));
  fc.assert(
    fc.property(binding, fc.constantFrom(...FIELDS), fc.option(text, { nil: undefined }), (b, field, other) => {
      fc.pre(other !== b[field] && (other !== undefined || (field !== 'tool' && field !== 'argsHash' && field !== 'identity')));
      return !boundTo(state(b), { ...b, [field]: other } as StateBinding);
    }),
  );
  // no tenant (a stand-alone gateway's state) is not the empty tenant
  assert.equal(boundTo(state({ tool: 't', argsHash: 'h', identity: 'i' }), { tool: 't', argsHash: 'h', identity: 'i', tenant: '' }), false);
});
