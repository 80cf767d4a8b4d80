import type { AnalyzeResult, ProcessGroup } from './types.js';
import { revealInvisible } from '../domain/reveal-invisible.js';

function trunc(s: string, n: number): string {
  return s.length <= n ? s : s.slice(0, n - 1) + '…';
}

export function verdictLabel(p: ProcessGroup): string {
  const ev = p.vpn_evidence;
  if (!ev.name_match) return '-';
  if (p.is_vpn_process_candidate) return p.name_impersonation_suspected ? 'VPN (impostor split off)' : `VPN (${ev.daemon})`;
  return p.name_impersonation_suspected ? 'IMPERSONATION' : 'name only, unverified';
}

export function suggestionLabel(p: ProcessGroup): string {
  const s = p.suggested_rule;
  if (s && !s.blocked_reason) {
    const conds = Object.entries(s.conditions)
      .filter(([, v]) => v !== '*')
      .map(([k, v]) => `${k}=${k === 'process_sha256' ? v!.split('|').map((h) => h.slice(0, 12) + '…').join('|') : v}`)
      .join(' ');
    return `${conds} (suppresses ${s.impact.would_suppress})`;
  }
  if (s?.blocked_reason) return `blocked: ${s.blocked_reason}`;
  return p.no_suggestion_reason ?? '';
}

/** Plain aligned table of process groups, followed by warnings. Used by `analyze` and `demo`. */
export function renderAnalysisTable(result: AnalyzeResult, opts: { width?: number } = {}): string {
  const width = opts.width ?? 80;
  const headers = ['process', 'count', 'endpoints', 'direct IPs', 'repos', 'VPN verdict', 'suggested rule / reason'];
  // process names and what quotes them are the telemetry's text: control characters written by name
  const rows = result.processes.map((p) => [
    revealInvisible(p.process),
    String(p.count),
    String(p.distinct_endpoints),
    String(p.distinct_direct_ips),
    String(p.distinct_repos),
    verdictLabel(p),
    trunc(revealInvisible(suggestionLabel(p)), width),
  ]);
  const numeric = [false, true, true, true, true, false, false];
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const out = [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
  if (rows.length === 0) out.push('(no process groups match)');
  out.push('');
  out.push(
    `${result.total_anomalies_scanned} detection(s) scanned, ${result.processes_returned} process group(s) shown (min count ${result.min_count_filter})` +
      (result.next_cursor ? `; more: --cursor ${result.next_cursor}` : ''),
  );
  // what the minimum count left out, and what it could not: said here too, not only in the JSON note
  const small = result.processes.filter((p) => p.count < result.min_count_filter).map((p) => revealInvisible(p.process));
  if (small.length) out.push(`Shown below the minimum count because they call a risky destination or are suspected impostors: ${small.join(', ')}`);
  const shown = result.processes.reduce((n, p) => n + p.count, 0);
  if (!result.next_cursor && result.total_anomalies_scanned > shown) {
    out.push(`${result.total_anomalies_scanned - shown} detection(s) in groups below the minimum count are not shown; none calls a risky destination or is a suspected impostor`);
  }
  const warnings = result.processes.flatMap((p) => p.warnings.map((w) => revealInvisible(`  ! ${p.process}: ${w}`)));
  if (warnings.length) out.push('Warnings:', ...warnings);
  return out.join('\n');
}
