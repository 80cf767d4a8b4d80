import { randomBytes } from 'node:crypto';
import type { DashboardPermission } from '../http/grants.js';

/**
 * Server-side dashboard sessions. The cookie carries only a random id; who signed in, what they may
 * do and the CSRF token stay in this process, so signing out (or a restart) ends a session for good.
 */

export interface Session {
  readonly id: string;
  readonly identity: string;
  readonly permissions: readonly DashboardPermission[];
  /** synchronizer token: every form carries it, every non-GET must return it */
  readonly csrf: string;
  lastSeen: number;
}

export interface SessionStoreOptions {
  /** a session unused this long is gone (default 8 h) */
  idleMs?: number;
  /** at most this many live sessions; the least recently used is dropped first (default 10 000) */
  max?: number;
  clock?: () => number;
}

const token = () => randomBytes(32).toString('base64url');

export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  private readonly idleMs: number;
  private readonly max: number;
  private readonly clock: () => number;

  constructor(o: SessionStoreOptions = {}) {
    this.idleMs = o.idleMs ?? 8 * 3600_000;
    this.max = o.max ?? 10_000;
    this.clock = o.clock ?? Date.now;
  }

  create(identity: string, permissions: readonly DashboardPermission[]): Session {
    if (this.sessions.size >= this.max) this.evictOldest();
    const s: Session = { id: token(), identity, permissions: [...permissions], csrf: token(), lastSeen: this.clock() };
    this.sessions.set(s.id, s);
    return s;
  }

  /** The live session of a cookie value, touched; undefined when unknown or idle too long. */
  get(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    const now = this.clock();
    if (now - s.lastSeen > this.idleMs) {
      this.sessions.delete(id);
      return undefined;
    }
    s.lastSeen = now;
    // re-insert: Map order is then least recently used first
    this.sessions.delete(id);
    this.sessions.set(id, s);
    return s;
  }

  delete(id: string): void {
    this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }

  private evictOldest(): void {
    const first = this.sessions.keys().next();
    if (!first.done) this.sessions.delete(first.value);
  }
}
