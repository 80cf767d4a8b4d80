import assert from 'node:assert/strict';
import { call, ingestCalls, proc, TS0 } from './helpers.js';
import { eachStore } from '../helpers/each-store.js';

const { storeTest } = eachStore();

const T = 'ioc';

storeTest('an IOC check by address or range finds the calls and detections that named a domain but went to that address', async (at) => {
  const store = await at.open();
  try {
    // calls to domains whose address is the IOC, beside one direct call to it and one elsewhere
    await ingestCalls(at, store, T, [
      call(T, 'web', 1, TS0, proc('git'), { domain: 'github.com', ip: '140.82.112.3', port: 443 }),
      call(T, 'web', 2, TS0 + 1, proc('curl'), { domain: 'gist.githubusercontent.com', ip: '185.199.108.133', port: 443 }),
      call(T, 'api', 3, TS0 + 2, proc('curl'), { domain: 'cdn.example.net', ip: '185.199.108.133', port: 443 }),
      call(T, 'api', 3, TS0 + 3, proc('wget'), { ip: '185.199.108.133', port: 8443 }),
    ]);
    for (const indicator of ['185.199.108.133', '::ffff:185.199.108.133', '185.199.108.0/24']) {
      const r = await store.inventory.checkIocInBaseline(T, { indicator, limit: 10 });
      assert.deepEqual(
        r.calls.map((c) => `${c.repo} ${c.endpoint} ${c.processes.join(',')}`).sort(),
        ['api 185.199.108.133:8443 wget', 'api cdn.example.net:443 curl', 'web gist.githubusercontent.com:443 curl'],
        indicator,
      );
      assert.equal(r.calls_total, 3, indicator);
      assert.equal(r.truncated, false);
      // every call raised a detection (the helper learns nothing first): the three that went there
      assert.deepEqual(r.detections, { new: 3, suppressed: 0, resolved: 0 }, indicator);
    }
    // another address, and a domain indicator, are answered as before
    const other = await store.inventory.checkIocInBaseline(T, { indicator: '140.82.112.3', limit: 10 });
    assert.deepEqual(other.calls.map((c) => c.endpoint), ['github.com:443']);
    const none = await store.inventory.checkIocInBaseline(T, { indicator: '185.199.109.0/24', limit: 10 });
    assert.deepEqual([none.calls_total, none.detections], [0, { new: 0, suppressed: 0, resolved: 0 }]);
    const byName = await store.inventory.checkIocInBaseline(T, { indicator: 'example.net', limit: 10 });
    assert.deepEqual(byName.calls.map((c) => c.endpoint), ['cdn.example.net:443']);
  } finally {
    await store.close();
  }
});
