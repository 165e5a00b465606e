/**
 * API keys: 256-bit random secrets, shown once by `zkgate keygen`; the config stores only their
 * SHA-256. A fast hash is the right one here: a slow KDF (scrypt, argon2) protects low-entropy
 * passwords from guessing, but nobody can guess 2^256 keys at any hash speed, while a KDF would
 * cost tens of ms of CPU on every request (a denial-of-service lever) or need a cache of
 * verified keys in memory. Lookup is by hash, so the gateway never compares secrets byte by byte.
 */
import { createHash, randomBytes } from 'node:crypto';

/** Every key starts with this, so leaked keys are easy to find with secret scanners. */
export const API_KEY_PREFIX = 'zkg_';
/** `zkg_` + 43 base64url characters (32 random bytes). */
const API_KEY_PATTERN = /^zkg_[A-Za-z0-9_-]{43}$/;

/** A new random API key. */
export function generateApiKey(): string {
  return `${API_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
}

/** True when `s` has the shape of a key (checked before hashing anything a client sends). */
export function isApiKeyShaped(s: string): boolean {
  return API_KEY_PATTERN.test(s);
}

/** Lowercase hex SHA-256 of a key: what the config stores. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** A short, non-secret id of a stored key for logs and errors: the first 12 hex digits of its hash. */
export function keyIdOf(sha256: string): string {
  return sha256.slice(0, 12);
}
