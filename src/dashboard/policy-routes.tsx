import { readFile } from 'node:fs/promises';
import { policyView } from './policy-view.js';
import { PolicyPage } from './pages/policy.js';
import { page, type Route } from './routes.js';

/** The Policy page: the file the server runs (`serve --policy`), read from disk on every request. */
export const policyRoute: Route = {
  method: 'GET',
  path: /^\/policy\/?$/,
  permission: 'read',
  async handle({ store, ctx }) {
    const file = store.policyFile;
    if (!file) return page(<PolicyPage ctx={ctx} d={{}} />);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      return page(<PolicyPage ctx={ctx} d={{ view: { ...policyView('', file), valid: false, fileIssues: [{ path: '', message: `cannot read: ${(e as Error).message}` }] } }} />);
    }
    return page(<PolicyPage ctx={ctx} d={{ view: policyView(text, file) }} />);
  },
};
