/**
 * A tools/call shaped to break what comes after the decision: arguments nested deeper than the audit
 * can write (a call whose record vanished once it was decided), and a tool name as long as a message
 * (the policy's name cache and the audit table grew without bound). Both are refused before the
 * policy reads them, never reach the upstream, and leave a record with neither the arguments nor the
 * whole name. Raw JSON-RPC through a real stdio gateway, both revisions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERAS, REVISION, call, enveloped, resultText, startGateway } from './stdio-helpers.js';
import { MAX_ARGS_DEPTH, MAX_TOOL_NAME_LENGTH } from '../../src/policy/canonical.js';

const POLICY = `version: 1
default: allow
tools:
  "*": { audit_args: plain }
  delete_thing: { action: deny, reason: no deletes }
`;

/** `depth` objects each in the next, {"a":{"a":...1}}, built as text (no stack is needed to write it). */
function nestedJson(depth: number): string {
  return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

for (const era of ERAS) test(`stdio gateway (${REVISION[era]}): arguments nested past ${MAX_ARGS_DEPTH} levels and a tool name past ${MAX_TOOL_NAME_LENGTH} characters are refused and audited`, async () => {
  const g = await startGateway(POLICY, { era });
  try {
    await g.init();
    // at the bound (the arguments object and 255 inside it): served, with its arguments in the audit
    g.send({ ...call(1, 'echo', {}), params: { name: 'echo', arguments: { text: 'deep enough', doc: JSON.parse(nestedJson(MAX_ARGS_DEPTH - 1)) } } });
    assert.equal(resultText(await g.reply(1)), 'deep enough');
    // past it: 4,300 levels could be decided but not written to the audit; 200,000 break any parser's stack
    for (const [id, tool, depth] of [[2, 'delete_thing', MAX_ARGS_DEPTH], [3, 'delete_thing', 4_300], [4, 'echo', 4_300]] as const) {
      // written as text: JSON.stringify of such an object would run out of stack here first
      const m = era === 'modern' ? enveloped(call(id, tool, {})) : call(id, tool, {});
      await g.raw(`${JSON.stringify(m).replace('"arguments":{}', `"arguments":{"doc":${nestedJson(depth)}}`)}\n`);
      assert.match(resultText(await g.reply(id)), new RegExp(`^\\[POLICY DENIED\\] tools/call params are invalid: arguments nest deeper than ${MAX_ARGS_DEPTH} levels`), `${tool} at ${depth}`);
    }
    const long = `t_${'x'.repeat(2_000_000)}`;
    g.send(call(5, long, {}));
    assert.match(resultText(await g.reply(5)), new RegExp(`a tool name is at most ${MAX_TOOL_NAME_LENGTH} characters, this one has ${long.length}`));
    g.send(call(6, 'x'.repeat(MAX_TOOL_NAME_LENGTH), {}));
    assert.equal((await g.reply(6)).error, undefined, 'a name at the bound goes on to the upstream');
    await g.barrier();

    assert.deepEqual(g.upstreamCalls().map((m) => m.params?.name), ['echo', 'x'.repeat(MAX_TOOL_NAME_LENGTH)], 'nothing refused reached the upstream');
    for (const records of [g.auditFile(), await g.auditTable()]) {
      const calls = records.filter((r) => r.rule === 'invalid_params');
      assert.deepEqual(calls.map((r) => r.decision), ['deny', 'deny', 'deny', 'deny'], JSON.stringify(records).slice(0, 500));
      assert.ok(calls.every((r) => JSON.stringify(r).length < 2_000), 'no record carries the arguments or the whole name');
      assert.match(String(calls[3]!.tool), /^t_x+… \(2000002 characters\)$/);
      assert.deepEqual(records.find((r) => r.tool === 'echo' && r.decision === 'allow')?.args, { text: 'deep enough', doc: JSON.parse(nestedJson(MAX_ARGS_DEPTH - 1)) });
    }
  } finally {
    await g.close();
  }
});
