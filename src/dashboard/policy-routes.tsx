import { readFile } from 'node:fs/promises';
import { createTwoFilesPatch } from 'diff';
import type { DashboardPermission } from '../http/grants.js';
import { applyPolicyEdit, PolicyEditError, type PolicyEdit } from '../policy/edit.js';
import { PolicyConflictError, sha256 } from '../policy/holder.js';
import { FileLockBusyError } from '../policy/file-lock.js';
import { parsePolicy, PolicyLoadError, type LoadedPolicy } from '../policy/load.js';
import { summarizePolicyChange } from '../policy/change-summary.js';
import { COLUMN_LABEL } from '../policy/columns.js';
import { policyView } from './policy-view.js';
import { policyEditFromForm } from './policy-edit-form.js';
import { carriedFields, isConfirmed } from './confirm.js';
import { PolicyPage } from './pages/policy.js';
import { PolicyDiff, PolicyEditRefusedPage } from './pages/policy-edit.js';
import { ConfirmPage } from './pages/confirm.js';
import type { Reply, Route, RouteRequest } from './routes.js';
import { message, page } from './replies.js';
import { permissionNote } from './pages/context.js';

/**
 * The Policy page: the file the server runs (`serve --policy`), read from disk on every request, and
 * its edits. An edit is a form per tool (pages/policy-edit.tsx) posted to /policy/edit; the first
 * post answers with the unified diff of the file, the parser's verdict and the change summary the
 * audit will record, and only a confirmed post with the hash the editor saw saves it, through the
 * holder that enforces the file in this process (holder.replace: checked, atomic, in force and
 * audited before the page answers).
 *
 * Who may edit: `write` and `approve` together. Moving a tool out of Approval or Deny lets agents
 * do without a person what an approver decides call by call, so `write` alone (rules, baselines)
 * must not be enough; `approve` alone decides single calls, not what the gateway lets through.
 */

// not routes.js's own helper: routes.js imports this module, so a value import would be circular

export const EDIT_PERMISSIONS: readonly DashboardPermission[] = ['write', 'approve'];

const canEdit = (r: RouteRequest) => EDIT_PERMISSIONS.every((p) => r.session.permissions.includes(p));


export const policyRoute: Route = {
  method: 'GET',
  path: /^\/policy\/?$/,
  permission: 'read',
  async handle(r) {
    const { store, ctx } = r;
    const file = store.policyFile;
    if (!file) return page(<PolicyPage ctx={ctx} d={{}} />);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      return page(<PolicyPage ctx={ctx} d={{ view: { ...policyView('', file), valid: false, fileIssues: [{ path: '', message: `cannot read: ${(e as Error).message}` }] } }} />);
    }
    const view = policyView(text, file);
    const saved = r.url.searchParams.get('saved');
    const holder = store.policyHolder;
    const notice =
      saved && holder && holder.current.hash === saved ? `Saved. The running server enforces the new version now (sha256 ${saved.slice(0, 12)}).` : undefined;
    const editNote = !holder
      ? undefined
      : !canEdit(r)
        ? permissionNote(ctx, `Changing the policy needs the dashboard permissions "write" and "approve"; the grant of "${r.session.identity}" has ${r.session.permissions.map((p) => `"${p}"`).join(', ')}.`)
        : !view.valid
          ? 'The file on disk is invalid: fix it there before changing it here (the running server keeps its last valid version).'
          : undefined;
    const edit = holder && canEdit(r) && view.valid ? { hash: sha256(text) } : undefined;
    return page(<PolicyPage ctx={ctx} d={{ view, edit, editNote, notice }} />);
  },
};

/** The edit in words, for the confirm and refusal pages. */
function asked(e: PolicyEdit): string {
  if (e.op === 'limit') return `Change rate limit ${e.index + 1} of ${e.tool} to ${e.limit.max} per ${e.limit.window}s${e.limit.scope ? `, scope ${e.limit.scope}` : ''}.`;
  return `Move ${e.tool} to ${COLUMN_LABEL[e.to]}.`;
}

/** What the audit will say (the runtime summarises the same two versions); an invalid file on disk has no columns to compare. */
function summaryOf(text: string, file: string, next: LoadedPolicy): string {
  try {
    return summarizePolicyChange(parsePolicy(text, file).engine.file, next.engine.file).summary;
  } catch {
    return 'a valid version in place of the invalid file on disk';
  }
}

const BEING_SAVED =
  'Another process is saving the policy file right now, and it did not finish within two seconds. Nothing was changed: reload the Policy page, check what is in force, and make your change again.';
const CHANGED_MEANWHILE =
  'The policy file changed on disk after you loaded the page (someone else edited it). Saving now would overwrite their change: reload the Policy page and make your change again.';

export const policyEditRoute: Route = {
  method: 'POST',
  path: /^\/policy\/edit$/,
  permission: EDIT_PERMISSIONS,
  async handle(r) {
    const file = r.store.policyFile;
    const holder = r.store.policyHolder;
    if (!file || !holder) return message(r.ctx, 404, 'No policy to change', 'This server runs no policy file it could change (start it with serve --policy FILE).');
    const form = r.form ?? new URLSearchParams();
    let req: ReturnType<typeof policyEditFromForm>;
    try {
      req = policyEditFromForm(form);
    } catch (e) {
      if (e instanceof PolicyEditError) return message(r.ctx, 400, 'Bad request', e.message);
      throw e;
    }
    const text = await readFile(file, 'utf8');
    const words = asked(req.edit);
    if (sha256(text) !== req.hash) return page(<PolicyEditRefusedPage ctx={r.ctx} title="The policy changed meanwhile" d={{ asked: words, message: CHANGED_MEANWHILE }} />, 409);
    let next: string;
    try {
      next = applyPolicyEdit(text, req.edit);
    } catch (e) {
      if (e instanceof PolicyEditError) return page(<PolicyEditRefusedPage ctx={r.ctx} title="The change cannot be made" d={{ asked: words, message: e.message }} />, 400);
      throw e;
    }
    const patch = createTwoFilesPatch(file, file, text, next, 'on disk', 'after the change');
    let loaded: LoadedPolicy;
    try {
      loaded = parsePolicy(next, file);
    } catch (e) {
      if (e instanceof PolicyLoadError) return page(<PolicyEditRefusedPage ctx={r.ctx} title="The change would make the policy invalid" d={{ asked: words, patch, issues: e.issues }} />, 422);
      throw e;
    }
    if (!isConfirmed(form)) {
      const summary = summaryOf(text, file, loaded);
      return page(
        <ConfirmPage ctx={r.ctx} d={{ title: 'Change the policy', action: '/policy/edit', fields: carriedFields(form), confirmLabel: 'Save the policy', cancelHref: '/policy' }}>
          <p>{words}</p>
          <p>
            The policy file is valid after the change. The running server enforces it as soon as it is saved, and the audit records it as{' '}
            <strong>{summary}</strong>, by <code>dashboard:{r.session.identity}</code>.
          </p>
          {req.edit.op === 'move' && req.edit.to !== 'hidden' && (loaded.engine.file.tools?.[req.edit.tool]?.when?.length ?? 0) > 0 ? (
            <p>
              Its conditions (<code>when</code>) stay as they are, and are checked before the action.
            </p>
          ) : null}
          <PolicyDiff patch={patch} />
        </ConfirmPage>,
      );
    }
    try {
      holder.replace(next, req.hash, `dashboard:${r.session.identity}`);
    } catch (e) {
      if (e instanceof PolicyConflictError) return page(<PolicyEditRefusedPage ctx={r.ctx} title="The policy changed meanwhile" d={{ asked: words, message: CHANGED_MEANWHILE }} />, 409);
      if (e instanceof FileLockBusyError) return page(<PolicyEditRefusedPage ctx={r.ctx} title="The policy is being saved" d={{ asked: words, message: BEING_SAVED }} />, 409);
      throw e;
    }
    // the reload wrote its audit record; a networked store's write is awaited before the page says so
    await r.store.policy?.audit.flush();
    return { kind: 'redirect', location: `/policy?saved=${loaded.hash}` };
  },
};

export const POLICY_ROUTES: readonly Route[] = [policyRoute, policyEditRoute];
