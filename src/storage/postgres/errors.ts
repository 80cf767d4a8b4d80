/**
 * PostgreSQL failures that come from the environment (server down, wrong credentials, missing
 * database), explained for a person; null for anything else.
 */
export function postgresProblem(err: unknown): { kind: 'not_found' | 'io'; message: string } | null {
  if (!(err instanceof Error)) return null;
  const code = String((err as { code?: unknown }).code ?? '');
  if (code === '3D000') return { kind: 'not_found', message: `${err.message}: create it first (createdb), then run "egress-triage db migrate"` };
  if (code === '28P01' || code === '28000') return { kind: 'io', message: `authentication failed (${err.message})` };
  if (['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'EAI_AGAIN'].includes(code)) return { kind: 'io', message: `cannot reach the server (${code}: ${err.message})` };
  if (/timeout exceeded when trying to connect|Connection terminated/i.test(err.message)) return { kind: 'io', message: `cannot reach the server (${err.message})` };
  // a Unix socket path (?host=/run/postgresql) with no server behind it
  if (code === 'ENOENT' && /connect/i.test(err.message)) return { kind: 'io', message: `cannot reach the server (${code}: ${err.message})` };
  // TLS asked for (sslmode) and refused or not verifiable: a setting of the connection, not a bug here
  if (/does not support SSL|self[- ]signed certificate|unable to (verify|get local issuer)|certificate|SSL/i.test(err.message) && !code.match(/^[0-9A-Z]{5}$/)) {
    return { kind: 'io', message: `cannot make a TLS connection (${err.message}); check sslmode in the URL` };
  }
  // the driver's word for a query on a connection the server already ended
  if (/connection error and is not queryable/i.test(err.message)) return { kind: 'io', message: `lost the connection to the server (${err.message})` };
  // 57P: operator intervention (shutdown, crash, restart, session ended); 53300: too many connections
  if (code.startsWith('57P') || code === '53300') return { kind: 'io', message: `the server refused work (${err.message})` };
  // the session sat idle inside its transaction longer than the pool allows (pool.ts)
  if (code === '25P03') return { kind: 'io', message: `the server ended the session (${err.message})` };
  return null;
}
