/**
 * Architecture rules checked by `npm run lint` (part of `npm test`). A backend is reached only
 * through the ports in src/storage/*.ts and the two pickers (src/storage/open-store.ts for the store,
 * src/storage/open-policy-state.ts for the policy state), so a second backend can replace it
 * without touching the domain.
 */
const BACKENDS = ['src/storage/sqlite/', 'src/storage/postgres/', 'src/state/redis/'];

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...BACKENDS.map((backend) => ({
      name: `only-picker-imports-${backend.split('/').at(-2)}`,
      comment: `${backend} is a backend: only its own modules and the pickers src/storage/open-store.ts and open-policy-state.ts may import it; everything else goes through a port in src/storage/*.ts`,
      severity: 'error',
      from: { path: '^src/', pathNot: [`^${backend}`, '^src/storage/open-(store|policy-state)\\.ts$'] },
      to: { path: `^${backend}` },
    })),
    ...BACKENDS.map((backend) => ({
      name: `${backend.split('/').at(-2)}-imports-no-other-backend`,
      comment: 'each backend stands alone behind the ports',
      severity: 'error',
      from: { path: `^${backend}` },
      to: { path: BACKENDS.filter((b) => b !== backend).map((b) => `^${b}`) },
    })),
    {
      name: 'no-circular',
      comment: 'a runtime import cycle makes load order matter; a cycle through type-only imports is erased by tsc',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
