/**
 * A seeded source of randomness, so that a run with the same `--seed` injects the same faults
 * into the same devices. mulberry32: small, fast and good enough for choosing faults; not for
 * anything secret.
 */
import type { Random } from '@fetchback/device-agent';

/** A generator of numbers in [0, 1) from a 32-bit seed. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seed derived from a base seed and a device id, stable across runs. */
export function deviceSeed(baseSeed: number, deviceId: string): number {
  let hash = baseSeed >>> 0 || 0x811c9dc5;
  for (let i = 0; i < deviceId.length; i++) {
    hash ^= deviceId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** True with probability `p`. */
export function chance(random: Random, p: number): boolean {
  return p > 0 && random() < p;
}

/** A uniform integer in [min, max]. */
export function between(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}
