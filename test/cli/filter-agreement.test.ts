import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../helpers.js';
import { TENANT, call, callOk, textOf, useDemoClient } from '../mcp/helpers.js';
import { eachStore } from '../helpers/each-store.js';

/**
 * One filter, four faces: `detections list`, `analyze` (CLI) and list_detections,
 * analyze_anomalous_calls_by_process (MCP) must select the same detections from the same store.
 */

type Filter = { owner?: string; repo?: string; status?: string; type?: string; since?: string; until?: string; process?: string; endpoint?: string };

const { fresh } = eachStore();

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`the same filter means the same thing in the CLI, the MCP tools and the analysis [${backend}]`, () => {
    const fx = useDemoClient('egress-filter-agree-', async () => (await fresh(backend, 'demo')).db);

    const cliArgs = (f: Filter, typeFlag: string) =>
      Object.entries(f).flatMap(([k, v]) => (v === undefined ? [] : [k === 'type' ? typeFlag : `--${k}`, v]));

    function cliList(f: Filter): number {
      const r = runCli(['detections', 'list', '--db', fx.db, '--tenant', TENANT, '--json', '--limit', '1', ...cliArgs(f, '--type')]);
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout).total;
    }
    function cliAnalyze(f: Filter): number {
      const r = runCli(['analyze', '--db', fx.db, '--tenant', TENANT, '--json', '--min-count', '1', ...cliArgs(f, '--detection-id')]);
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout).total_anomalies_scanned;
    }
    const mcpArgs = (f: Filter) => {
      const a: Record<string, unknown> = { ...f };
      if (f.type !== undefined) {
        a.detection_id = f.type;
        delete a.type;
      }
      return a;
    };
    const mcpList = async (f: Filter) => (await callOk(fx.client, 'list_detections', { ...mcpArgs(f), limit: 1 })).total as number;
    const mcpAnalyze = async (f: Filter) => (await callOk(fx.client, 'analyze_anomalous_calls_by_process', { ...mcpArgs(f), minCount: 1, limit: 1, samples: 0 })).total_anomalies_scanned as number;

    async function allFour(f: Filter): Promise<number> {
      const full: Filter = { status: 'new', type: 'New-Outbound-Network-Call', ...f };
      const counts = { cliList: cliList(full), cliAnalyze: cliAnalyze(full), mcpList: await mcpList(full), mcpAnalyze: await mcpAnalyze(full) };
      assert.equal(new Set(Object.values(counts)).size, 1, `${JSON.stringify(full)} disagrees: ${JSON.stringify(counts)}`);
      return counts.cliList;
    }

    it('owner and repo are case-insensitive everywhere, and owner/name works everywhere', async () => {
      const globex = await allFour({ owner: 'globex' });
      assert.ok(globex > 100, `demo tenant has globex detections (${globex})`);
      assert.equal(await allFour({ owner: 'GLOBEX' }), globex);
      assert.equal(await allFour({ owner: 'Globex', repo: 'SCRAPER' }), globex, 'globex has one repo');
      assert.equal(await allFour({ repo: 'GLOBEX/scraper' }), globex);
      assert.equal(await allFour({ repo: 'scraper' }), globex);
    });

    it('status, type and time windows agree', async () => {
      const all = await allFour({ status: 'all' });
      const open = await allFour({});
      assert.ok(all >= open && open > 0);
      const blocked = await allFour({ type: 'domain-blocked', status: 'all' });
      assert.ok(blocked > 0);
      const early = await allFour({ until: '2026-11-10T00:00:00Z' });
      const late = await allFour({ since: '2026-11-10' });
      assert.equal(early + late, open, 'a window split at one instant partitions the detections');
      assert.ok(early > 0 && late > 0);
    });

    it('process and endpoint filters agree between CLI list and MCP list, normalised the same way', async () => {
      const pair = async (f: Filter) => {
        const a = cliList(f);
        const b = await mcpList({ status: 'all', ...f });
        assert.equal(a, b, JSON.stringify(f));
        return a;
      };
      const tailscaled = await pair({ process: 'tailscaled' });
      assert.ok(tailscaled > 100);
      for (const p of ['TAILSCALED', 'tailscaled.exe', '/usr/sbin/tailscaled', 'C:\\Tailscale\\tailscaled.EXE']) assert.equal(await pair({ process: p }), tailscaled, p);
      const hook443 = await pair({ endpoint: 'webhook.site:443' });
      assert.ok(hook443 > 0);
      assert.equal(await pair({ endpoint: 'WEBHOOK.SITE' }), hook443, 'a bare host matches its only port');
      // an IP called on four different ports: bare = every port, host:port = one of them
      const anyPort = await pair({ endpoint: '138.11.160.18' });
      assert.ok(anyPort >= 4, `bare IP matches all ports (${anyPort})`);
      assert.ok((await pair({ endpoint: '138.11.160.18:443' })) < anyPort);
    });

    it('inventory tools and rule suggestions treat owner the same way', async () => {
      const runs = async (owner: string, repo?: string) =>
        (await callOk(fx.client, 'list_recent_workflow_runs', { owner, ...(repo ? { repo } : {}), limit: 1 })).total_runs as number;
      const lower = await runs('globex');
      assert.ok(lower > 0);
      assert.equal(await runs('GLOBEX'), lower);
      assert.equal(await runs('GLOBEX', 'Scraper'), lower);
      const conflict = await call(fx.client, 'list_recent_workflow_runs', { owner: 'acme-corp', repo: 'globex/scraper' });
      assert.equal(conflict.isError, true);
      assert.match(textOf(conflict), /^repo: "globex\/scraper" belongs to owner "globex", which conflicts with owner "acme-corp"/);
      const ioc = async (owner: string) => (await callOk(fx.client, 'check_ioc_in_baseline', { indicator: 'tailscale.com', owner })).calls_total as number;
      assert.ok((await ioc('globex')) > 0);
      assert.equal(await ioc('GLOBEX'), await ioc('globex'));
      // a suggestion scoped by a differently-cased owner uses the stored spelling (rule conditions are exact)
      const a = await callOk(fx.client, 'analyze_anomalous_calls_by_process', { owner: 'GLOBEX', minCount: 1, samples: 0, limit: 50 });
      const scoped = a.processes.map((p: Record<string, any>) => p.suggested_rule).filter((r: unknown) => r !== null);
      assert.ok(scoped.length > 0, 'some process gets a suggestion');
      for (const r of scoped) assert.equal(r.conditions.owner, 'globex');
    });

    // Once: a bad filter is refused before the store is read (the CLI faces are given a PostgreSQL URL
    // nothing listens at, which they would fail to open with exit 5), so the backend changes nothing.
    if (backend === 'sqlite') it('bad filters are refused by every face, naming the argument', async () => {
      const unopened = 'postgres://postgres@127.0.0.1:1/unreachable';
      const cases: [Filter, RegExp, RegExp][] = [
        [{ type: 'Foo' }, /unknown detection type "Foo": use one of New-Outbound-Network-Call/, /^(--type|--detection-id|detection_id)$/],
        [{ owner: 'acme-corp', repo: 'globex/scraper' }, /belongs to owner "globex", which conflicts with/, /^(--repo|repo)$/],
        [{ since: 'Nov 1' }, /"Nov 1" is not a time/, /^(--since|since)$/],
        [{ endpoint: 'webhook.site:https' }, /not a number from 0 to 65535/, /^(--endpoint|endpoint)$/],
        [{ status: 'open' }, /expected one of "?new"?/, /^(--status|status)$/],
        // empty like every other filter, not "no bound" (the QA case: since "" listed everything)
        [{ since: '' }, /is empty; give a value/, /^(--since|since)$/],
        [{ until: ' ' }, /is empty; give a value/, /^(--until|until)$/],
        [{ until: '8640000000000001' }, /"8640000000000001" is out of range/, /^(--until|until)$/],
      ];
      for (const [f, why, arg] of cases) {
        const faces: [string, string][] = [];
        const list = runCli(['detections', 'list', '--db', unopened, '--tenant', TENANT, ...cliArgs(f, '--type')]);
        assert.equal(list.status, 2, `detections list ${JSON.stringify(f)}: ${list.stderr}`);
        faces.push(['cli list', list.stderr]);
        if (f.endpoint === undefined) {
          const an = runCli(['analyze', '--db', unopened, '--tenant', TENANT, ...cliArgs(f, '--detection-id')]);
          assert.equal(an.status, 2, `analyze ${JSON.stringify(f)}: ${an.stderr}`);
          faces.push(['cli analyze', an.stderr]);
          const r = await call(fx.client, 'analyze_anomalous_calls_by_process', mcpArgs(f));
          assert.equal(r.isError, true);
          faces.push(['mcp analyze', textOf(r)]);
        }
        const r = await call(fx.client, 'list_detections', mcpArgs(f));
        assert.equal(r.isError, true);
        faces.push(['mcp list', textOf(r)]);
        for (const [face, msg] of faces) {
          assert.match(msg, why, `${face}: ${msg}`);
          // our parser says "<argument>: why"; the SDK's schema check (MCP enums) says
          // "Input validation error: Invalid arguments for tool <tool>: <argument>: why"
          const named =
            /^Input validation error: Invalid arguments for tool \S+: (\S+?): /.exec(msg.trim()) ?? /^(\S+?): /.exec(msg.trim().replace(/^egress-triage: /, ''));
          assert.ok(named && arg.test(named[1]!), `${face} names the argument: ${msg}`);
          assert.doesNotMatch(msg, /\n\s+at /, `${face}: no stack trace`);
        }
      }
    });
  });
}
