/**
 * Device secrets: 32 random bytes, shown once, stored only as `scrypt$N$r$p$salt$hash` (salt and
 * hash base64url) and compared in constant time.
 *
 * Cost: scrypt's work factor exists to slow down guessing of human-chosen passwords. A device
 * secret is 256 random bits, which no amount of guessing reaches, so the factor buys nothing but
 * latency on every MQTT connect. N = 2^10 keeps a check near 3 ms; the stored format records N,
 * r and p, so a later build may raise them without invalidating existing hashes. The broker
 * checks with `verifySecret`, in libuv's thread pool: checked on the main thread, 2,000
 * devices connecting at once held the event loop for six seconds.
 */
import { randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';

const SECRET_BYTES = 32;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
const COST = { N: 1024, r: 8, p: 1 } as const;
/** Bounds on the parameters read back from the database, so a corrupt row cannot stall us. */
const MAX_N = 2 ** 20;

/** A new device secret, base64url (43 characters). */
export function newSecret(): string {
  return randomBytes(SECRET_BYTES).toString('base64url');
}

/** The storable hash of a secret. */
export function hashSecret(secret: string): string {
  const salt = randomBytes(SALT_BYTES);
  return formatHash(salt, scryptSync(secret, salt, HASH_BYTES, COST));
}

/** `hashSecret` in libuv's thread pool, leaving the event loop free. */
export function hashSecretAsync(secret: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, HASH_BYTES, COST, (err, hash) =>
      err ? reject(err) : resolve(formatHash(salt, hash)),
    );
  });
}

/** A new secret and its storable hash, hashed off the event loop. */
export async function newCredentials(): Promise<{ secret: string; secretHash: string }> {
  const secret = newSecret();
  return { secret, secretHash: await hashSecretAsync(secret) };
}

function formatHash(salt: Buffer, hash: Buffer): string {
  return ['scrypt', COST.N, COST.r, COST.p, salt.toString('base64url'), hash.toString('base64url')]
    .map(String)
    .join('$');
}

interface StoredHash {
  readonly salt: Buffer;
  readonly expected: Buffer;
  readonly cost: { N: number; r: number; p: number; maxmem: number };
}

/** The parts of a stored hash, or undefined when it is malformed or out of bounds. */
function parseStored(stored: string): StoredHash | undefined {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![N, r, p].every(Number.isInteger) || N < 2 || N > MAX_N || r < 1 || r > 32 || p !== 1) {
    return undefined;
  }
  const salt = Buffer.from(parts[4] ?? '', 'base64url');
  const expected = Buffer.from(parts[5] ?? '', 'base64url');
  if (expected.length !== HASH_BYTES) return undefined;
  return { salt, expected, cost: { N, r, p, maxmem: 256 * N * r + 1024 } };
}

/**
 * True when `secret` matches `stored`; false for any malformed stored value. Runs in libuv's
 * thread pool, leaving the event loop free.
 */
export function verifySecret(secret: string, stored: string): Promise<boolean> {
  const parsed = parseStored(stored);
  if (!parsed) return Promise.resolve(false);
  return new Promise((resolve) => {
    scrypt(secret, parsed.salt, HASH_BYTES, parsed.cost, (err, actual) => {
      resolve(!err && timingSafeEqual(actual, parsed.expected));
    });
  });
}
