/**
 * Seeded, portable pseudo-random numbers for the sample-tenant generator.
 * Never Math.random or Date.now: the same seed must give byte-identical output everywhere.
 */

/** 32-bit FNV-1a over a string, then avalanche-mixed. */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return mix32(h);
}

/** murmur3 finaliser: a good 32-bit avalanche. */
export function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Combines a base hash with integers into a new well-mixed 32-bit key. */
export function derive(base: number, ...parts: number[]): number {
  let h = base >>> 0;
  for (const p of parts) h = mix32((h ^ Math.imul((p | 0) + 0x9e3779b9, 0x27d4eb2d)) >>> 0);
  return h;
}

/** sfc32 (Chris Doty-Humphrey's Small Fast Counting generator), seeded from one 32-bit key. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d = 1;

  constructor(key: number) {
    this.a = key >>> 0;
    this.b = mix32(key ^ 0x9e3779b9);
    this.c = mix32(key ^ 0x7f4a7c15);
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** k distinct items (k clamped to the list length), in list order. */
  sample<T>(items: readonly T[], k: number): T[] {
    const n = items.length;
    k = Math.max(0, Math.min(k, n));
    const out: T[] = [];
    let needed = k;
    for (let i = 0; i < n && needed > 0; i++) {
      if (this.next() * (n - i) < needed) {
        out.push(items[i]!);
        needed--;
      }
    }
    return out;
  }
}
