/**
 * `@fetchback/shared`: the Fetchback wire protocol. Topic names, CBOR codecs with strict
 * validation, deterministic encoding, ed25519 signatures and key certificates, digests and chunk
 * tables, the error catalogue and backoff. No I/O and no logging: functions return values or
 * throw coded errors.
 */
export * from './backoff.js';
export * from './cbor.js';
export * from './digest.js';
export * from './errors.js';
export * from './fields.js';
export * from './keys.js';
export * from './messages.js';
export * from './topics.js';
export * from './verify.js';
