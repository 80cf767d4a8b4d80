import type { OpenStore } from '../storage/open-store.js';

/** The ports the dashboard reads (and later writes) through: never SQL, always an OpenStore's ports. */
export type DashboardStore = Pick<OpenStore, 'detections' | 'runCalls' | 'overview'> & {
  /** pending approvals of the running policy gateway; undefined when no policy holds calls */
  pendingApprovals?: () => Promise<number>;
};
