import type { DetectionStatus } from '../../domain/types.js';

/** Small shared renderers: times, counts, hashes, status badges. */

export function formatTime(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC').replace(/Z$/, ' UTC');
}

export function Time({ iso }: { iso: string }) {
  return <time dateTime={iso}>{formatTime(iso)}</time>;
}

const NUMBER = new Intl.NumberFormat('en-US');
export const formatCount = (n: number) => NUMBER.format(n);

/** A sha256 shown short, the whole value in the title and in the text for copy. */
export function Sha({ sha256 }: { sha256: string | null }) {
  if (!sha256) return <span class="muted">no hash</span>;
  return (
    <code title={sha256}>
      sha256:{sha256.slice(0, 12)}
      <span class="muted">…</span>
    </code>
  );
}

const STATUS_TONE: Record<DetectionStatus, string> = { new: 'danger', suppressed: 'neutral', resolved: 'ok' };

export function StatusBadge({ status }: { status: DetectionStatus }) {
  return <span class={`badge ${STATUS_TONE[status]}`}>{status}</span>;
}
