import type { Command } from 'commander';
import { DETECTION_STATUSES, DETECTION_TYPES, type DetectionStatus, type DetectionType } from '../domain/types.js';
import { FilterError, parseDetectionFilter, type DetectionFilter, type FilterField, type RawFilter } from '../domain/filter.js';
import { TIME_FORMS } from '../domain/time.js';
import { UserError } from './errors.js';

/**
 * The detection filter options, registered the same way on every command that filters detections.
 * Commander only collects strings; domain/filter.ts validates and normalises them, so `detections
 * list`, `analyze` and the MCP tools accept exactly the same values.
 */

export type FilterOption = 'type' | 'status' | 'owner' | 'repo' | 'workflow' | 'job' | 'run-id' | 'process' | 'sha256' | 'endpoint' | 'since' | 'until';

export interface FilterOptionValues {
  type?: string[];
  detectionId?: string[];
  status?: string;
  owner?: string;
  repo?: string;
  workflow?: string;
  job?: string;
  runId?: string;
  process?: string;
  sha256?: string;
  endpoint?: string;
  since?: string;
  until?: string;
}

const HELP: Record<FilterOption, string> = {
  type: `detection type(s), case-insensitive: ${DETECTION_TYPES.join(', ')}`,
  status: `detection status: ${[...DETECTION_STATUSES, 'all'].join(', ')}`,
  owner: 'GitHub owner (org or user), case-insensitive',
  repo: 'repository "name" or "owner/name", case-insensitive',
  workflow: 'workflow path, exact (e.g. .github/workflows/ci.yml)',
  job: 'job name, exact',
  'run-id': 'workflow run id',
  process: 'process name (basename, .exe stripped, case-insensitive)',
  sha256: 'sha256 of the process binary, case-insensitive',
  endpoint: 'host:port, or a bare host / IP for any port',
  since: `from (inclusive): ${TIME_FORMS}`,
  until: `to (exclusive): ${TIME_FORMS}`,
};

const PLACEHOLDER: Record<Exclude<FilterOption, 'type' | 'status'>, string> = {
  owner: 'owner',
  repo: 'repo',
  workflow: 'path',
  job: 'name',
  'run-id': 'id',
  process: 'name',
  sha256: 'digest',
  endpoint: 'endpoint',
  since: 'time',
  until: 'time',
};

const NAMES: Record<FilterField, string> = {
  types: '--type',
  status: '--status',
  owner: '--owner',
  repo: '--repo',
  workflow: '--workflow',
  job: '--job',
  runId: '--run-id',
  process: '--process',
  sha256: '--sha256',
  endpoint: '--endpoint',
  since: '--since',
  until: '--until',
};

export function addFilterOptions(cmd: Command, which: FilterOption[], defaults: { status: DetectionStatus | 'all' }): Command {
  for (const o of which) {
    if (o === 'type') cmd.option('--type <type...>', HELP.type);
    else if (o === 'status') cmd.option('--status <status>', `${HELP.status} (default: ${defaults.status})`);
    else cmd.option(`--${o} <${PLACEHOLDER[o]}>`, HELP[o]);
  }
  return cmd;
}

/** Validated filter from the parsed options; a UserError naming the option otherwise. */
export function filterFromOptions(
  opts: FilterOptionValues,
  defaults: { status: DetectionStatus | 'all'; types?: DetectionType[]; now?: number },
  typeOption = '--type',
): DetectionFilter {
  const raw: RawFilter = {
    types: [...(opts.type ?? []), ...(opts.detectionId ?? [])],
    status: opts.status,
    owner: opts.owner,
    repo: opts.repo,
    workflow: opts.workflow,
    job: opts.job,
    runId: opts.runId,
    process: opts.process,
    sha256: opts.sha256,
    endpoint: opts.endpoint,
    since: opts.since,
    until: opts.until,
  };
  try {
    return parseDetectionFilter(raw, {
      names: { ...NAMES, types: typeOption },
      defaultStatus: defaults.status,
      ...(defaults.types ? { defaultTypes: defaults.types } : {}),
      now: defaults.now ?? Date.now(),
    });
  } catch (e) {
    if (e instanceof FilterError) throw new UserError(e.message);
    throw e;
  }
}
