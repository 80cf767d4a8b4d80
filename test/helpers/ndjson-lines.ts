import type { RecordBatch } from '../../src/ingest/records.js';

type LinesBatch = Extract<RecordBatch, { kind: 'lines' }>;

/** An NDJSON batch of `texts` as readRecords hands lines on: bytes, one buffer for all. */
export function linesBatch(texts: readonly string[], firstLine = 1): LinesBatch {
  const bufs: Buffer[] = [];
  const starts: number[] = [];
  const ends: number[] = [];
  const all = Buffer.from(texts.join('\n'));
  let at = 0;
  for (const t of texts) {
    const n = Buffer.byteLength(t);
    bufs.push(all);
    starts.push(at);
    ends.push(at + n);
    at += n + 1;
  }
  return { kind: 'lines', firstLine, bufs, starts, ends };
}

/** The lines of an NDJSON batch, decoded. */
export function lineTexts(b: LinesBatch): string[] {
  return b.bufs.map((buf, i) => buf.toString('utf8', b.starts[i], b.ends[i]));
}
