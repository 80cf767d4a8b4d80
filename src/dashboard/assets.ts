import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The client bundle, built by Vite at package build time (web/, `npm run build`) into dist/web and
 * shipped in the package: nothing is fetched from a CDN. File names carry a content hash, so they are
 * served with a one-year immutable cache; the pages find the current names in Vite's manifest.
 */

export interface Assets {
  /** URL paths of the entry's script and stylesheets, for the page head */
  script: string;
  styles: string[];
  /** the file of an /assets/ URL path, or undefined when it is not one of ours */
  file(pathname: string): string | undefined;
}

interface ManifestEntry {
  file: string;
  css?: string[];
  isEntry?: boolean;
}

/** dist/web, two folders up from dist/src/dashboard/ and from the bundle's dist/bundle/cli/ (scripts/bundle-cli.mjs) */
export const DEFAULT_ASSET_DIR = fileURLToPath(new URL('../../web/', import.meta.url));
const ENTRY = 'main.ts';

export function loadAssets(dir: string = DEFAULT_ASSET_DIR): Assets {
  let manifest: Record<string, ManifestEntry>;
  try {
    manifest = JSON.parse(readFileSync(join(dir, '.vite', 'manifest.json'), 'utf8')) as Record<string, ManifestEntry>;
  } catch (e) {
    throw new Error(`the dashboard's client bundle is missing from ${dir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): run "npm run build"`);
  }
  const entry = manifest[ENTRY];
  if (!entry) throw new Error(`${join(dir, '.vite', 'manifest.json')} has no entry ${ENTRY}: run "npm run build"`);
  // Only files the manifest names are served: no path from a request ever reaches the file system.
  const files = new Map<string, string>();
  for (const e of Object.values(manifest)) {
    for (const f of [e.file, ...(e.css ?? [])]) files.set(`/${f}`, join(dir, f));
  }
  return {
    script: `/${entry.file}`,
    styles: (entry.css ?? []).map((c) => `/${c}`),
    file: (p) => files.get(p),
  };
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.woff2': 'font/woff2',
  '.png': 'image/png',
};

export async function readAsset(file: string): Promise<{ body: Buffer; type: string }> {
  return { body: await readFile(file), type: TYPES[extname(file)] ?? 'application/octet-stream' };
}
