import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ContextInterner, RecordParser } from '../../src/ingest/record-parser.js';
import type { JobContext } from '../../src/domain/types.js';
import { nativeEvent } from '../helpers.js';
import { linesBatch } from '../helpers/ndjson-lines.js';

function ctx(o: Partial<JobContext> = {}): JobContext {
  return { owner: 'acme', repo: 'api', workflow: 'ci.yml', job: 'build', runId: '1', runAttempt: 1, jobId: '61', ...o };
}

test('calls of one job run leg share the first context seen; any other field keeps its own', () => {
  const i = new ContextInterner(16);
  const first = ctx();
  assert.equal(i.intern('k', first), first);
  assert.equal(i.intern('k', ctx()), first);
  for (const other of [ctx({ jobId: '62' }), ctx({ jobId: undefined }), ctx({ jobId: '' }), ctx({ runAttempt: 2 }), ctx({ runId: '2' }), ctx({ workflow: 'cd.yml' })]) {
    assert.equal(i.intern('k', other), other, JSON.stringify(other));
  }
  // an absent job id and an undefined one cross the thread boundary apart: not merged either
  const undef = ctx({ jobId: undefined });
  const absent: JobContext = { owner: 'acme', repo: 'api', workflow: 'ci.yml', job: 'build', runId: '1', runAttempt: 1 };
  assert.equal(i.intern('u', undef), undef);
  assert.equal(i.intern('u', absent), absent);
});

test('the context interner stays bounded and keeps answering right once full', () => {
  const i = new ContextInterner(4);
  const made = Array.from({ length: 10 }, (_, n) => ctx({ runId: String(n) }));
  for (const c of made) assert.equal(i.intern(c.runId, c), c);
  assert.equal(i.intern('9', ctx({ runId: '9' })), made[9]);
  assert.ok((i as unknown as { byKey: Map<string, JobContext> }).byKey.size <= 4);
});

test('a parsed batch holds one context object per job run leg, with the values of its lines', () => {
  const line = (run: number, jobId: string, t: number, domain: string) => JSON.stringify(nativeEvent({ run, jobId, t, domain }));
  // interleaved legs of two runs, each call new (no repeats)
  const lines = [
    line(1, '61', 1, 'a.example'),
    line(1, '62', 2, 'b.example'),
    line(2, '71', 3, 'c.example'),
    line(1, '61', 4, 'd.example'),
    line(1, '62', 5, 'e.example'),
    line(2, '71', 6, 'f.example'),
  ];
  const p = new RecordParser('native', 'mem', 'default', {});
  const b = p.parseBatch(linesBatch(lines));
  assert.equal(b.errors.length, 0);
  const calls = b.outputs.map((o) => (o.kind === 'call' ? o.event : assert.fail(o.kind)));
  assert.equal(calls.length, 6);
  assert.equal(calls[3]!.ctx, calls[0]!.ctx);
  assert.equal(calls[4]!.ctx, calls[1]!.ctx);
  assert.equal(calls[5]!.ctx, calls[2]!.ctx);
  assert.notEqual(calls[0]!.ctx, calls[1]!.ctx);
  assert.deepEqual(
    calls.map((c) => [c.ctx.runId, c.ctx.jobId, c.domain]),
    [
      ['1001', '61', 'a.example'],
      ['1001', '62', 'b.example'],
      ['1002', '71', 'c.example'],
      ['1001', '61', 'd.example'],
      ['1001', '62', 'e.example'],
      ['1002', '71', 'f.example'],
    ],
  );
  // shared within the batch as it crosses to the main thread (structured clone keeps identity)
  const copy = structuredClone(b);
  const cc = copy.outputs.map((o) => (o.kind === 'call' ? o.event.ctx : null));
  assert.equal(cc[3], cc[0]);
  assert.equal(new Set(cc).size, 3);
});
