import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers.js';
import { PolicyHolder, SETTLE_MS, sha256, type ReloadEvent, type Schedule } from '../../src/policy/holder.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The watcher puts a changed policy file in force only once it reads the same twice: a file written
 * in place is read half written, and its first part can be a valid policy that lacks the deny after
 * the cut. The watcher's steps run by hand here (no timer), so what is in force between them is seen.
 */

const tmp = tempDir('egress-triage-reload-settle-');
after(() => tmp.cleanup());

const DENY = '  delete_repo: { action: deny, reason: "agents may not delete repositories" }\n';
const OLD = `version: 1\ntools:\n  read_me: { action: allow }\n${DENY}`;
// a new version, and its first part as a reader finds it while the writer is still at work: valid,
// and without the deny, so delete_repo would fall to the default (allow)
const NEW = `version: 1\ntools:\n  read_me: { action: allow }\n  list_repos: { action: allow }\n${DENY}`;
const HALF = NEW.slice(0, NEW.indexOf(DENY));

/** A schedule whose steps the test runs itself, as the timers would, one at a time and in order. */
function manualSchedule(): Schedule & { pending: { fn: () => void; ms: number }[]; runNext(): number } {
  const pending: { fn: () => void; ms: number }[] = [];
  const schedule = ((fn: () => void, ms: number) => {
    const step = { fn, ms };
    pending.push(step);
    return () => {
      const i = pending.indexOf(step);
      if (i >= 0) pending.splice(i, 1);
    };
  }) as Schedule & { pending: typeof pending; runNext(): number };
  schedule.pending = pending;
  schedule.runNext = () => {
    const step = pending.shift();
    assert.ok(step, 'a step is scheduled');
    step.fn();
    return step.ms;
  };
  return schedule;
}

function deniesDeleteRepo(holder: PolicyHolder): boolean {
  return holder.current.engine.decide('delete_repo', {}).action === 'deny';
}

test('a file read while half written is not put in force: the version in force stays until two reads agree', () => {
  const path = join(tmp.dir, 'half.yaml');
  writeFileSync(path, OLD);
  const schedule = manualSchedule();
  const holder = new PolicyHolder(path, undefined, undefined, schedule);
  const events: ReloadEvent[] = [];
  holder.on('reload', (ev: ReloadEvent) => events.push(ev));
  holder.on('invalid', (e: Error) => assert.fail(`no version is invalid here: ${e.message}`));
  assert.ok(deniesDeleteRepo(holder));

  // the writer has written the first part: the watcher reads it, and waits for it to settle
  writeFileSync(path, HALF);
  holder.fileChanged();
  schedule.runNext();
  assert.equal(schedule.pending.length, 1, 'a second read is scheduled');
  assert.equal(schedule.pending[0]!.ms, SETTLE_MS);
  assert.equal(events.length, 0);
  assert.ok(deniesDeleteRepo(holder), 'the half-written file is not in force');

  // the writer finishes before the second read: it differs, so the wait starts again
  writeFileSync(path, NEW);
  schedule.runNext();
  assert.equal(events.length, 0);
  assert.ok(deniesDeleteRepo(holder));
  schedule.runNext();
  assert.equal(schedule.pending.length, 0);
  assert.equal(events.length, 1, 'the whole file is put in force once');
  assert.equal(events[0]!.current.hash, sha256(NEW));
  assert.equal(events[0]!.by, 'file');
  assert.ok(deniesDeleteRepo(holder));
  holder.close();
});

test('a file that reads the same twice is put in force; a change seen again restarts the wait; one back to the version in force changes nothing', () => {
  const path = join(tmp.dir, 'settled.yaml');
  writeFileSync(path, OLD);
  const schedule = manualSchedule();
  const holder = new PolicyHolder(path, undefined, undefined, schedule);
  const events: ReloadEvent[] = [];
  holder.on('reload', (ev: ReloadEvent) => events.push(ev));

  writeFileSync(path, HALF);
  holder.fileChanged();
  schedule.runNext();
  // another change event cancels the pending read and waits from the start
  holder.fileChanged();
  assert.equal(schedule.pending.length, 1);
  assert.notEqual(schedule.pending[0]!.ms, SETTLE_MS);
  // written back as it was: nothing to put in force, nothing more to read
  writeFileSync(path, OLD);
  schedule.runNext();
  assert.equal(schedule.pending.length, 0);
  assert.equal(events.length, 0);

  // a deliberate version without the deny is put in force once it has settled
  writeFileSync(path, HALF);
  holder.fileChanged();
  schedule.runNext();
  schedule.runNext();
  assert.equal(events.length, 1);
  assert.equal(holder.current.hash, sha256(HALF));
  assert.ok(!deniesDeleteRepo(holder));
  holder.close();
});

test('the real watcher puts a saved file in force after it settles', async () => {
  const path = join(tmp.dir, 'watched.yaml');
  writeFileSync(path, OLD);
  const holder = new PolicyHolder(path).watch(50);
  try {
    writeFileSync(path, NEW);
    await waitFor(() => holder.current.hash === sha256(NEW), 30_000, 25, 'the new version in force');
  } finally {
    holder.close();
  }
});
