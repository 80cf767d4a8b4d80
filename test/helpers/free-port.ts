import { createServer } from 'node:net';

/**
 * A loopback TCP port that nothing listens on right now: bound, read and released. For a server a
 * test starts on it, and for an address that refuses connections (nothing is started on it).
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
