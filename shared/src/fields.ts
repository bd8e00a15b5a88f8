/**
 * Asserters for fields of decoded messages: each checks, narrows and returns the value, or
 * throws a coded error whose message reads `"field" expected <rule>, got <actual>`.
 */
import { type ErrorCode, fbError } from './errors.js';

/** A decoded CBOR map. */
export type Fields = Record<string, unknown>;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (Array.isArray(value)) return `array of ${value.length}`;
  if (typeof value === 'string') return `text of ${value.length}`;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  return typeof value;
}

function fail(code: ErrorCode, field: string, rule: string, value: unknown): never {
  throw fbError(code, `"${field}" expected ${rule}, got ${describe(value)}`, { field });
}

/**
 * Returns `value` as a map.
 *
 * @throws FetchbackError `FB_ERR_MSG_NOT_MAP` or `FB_ERR_MSG_FIELD_TYPE` (for nested maps).
 */
export function asMap(value: unknown, field = 'message'): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail(
      field === 'message' ? 'FB_ERR_MSG_NOT_MAP' : 'FB_ERR_MSG_FIELD_TYPE',
      field,
      'a map',
      value,
    );
  }
  if (value instanceof Uint8Array) return fail('FB_ERR_MSG_FIELD_TYPE', field, 'a map', value);
  return value as Fields;
}

function present(map: Fields, key: string): unknown {
  const value = map[key];
  if (value === undefined) throw fbError('FB_ERR_MSG_FIELD_MISSING', `"${key}"`, { field: key });
  return value;
}

/** An unsigned integer in [min, max]; 64-bit values beyond 2^53 are refused. */
export function uintField(
  map: Fields,
  key: string,
  max = Number.MAX_SAFE_INTEGER,
  min = 0,
): number {
  return checkUint(present(map, key), key, max, min);
}

/** Like `uintField`, or `undefined` when absent. */
export function optUintField(
  map: Fields,
  key: string,
  max?: number,
  min?: number,
): number | undefined {
  return map[key] === undefined ? undefined : uintField(map, key, max, min);
}

/** Checks a value already taken from a map or array. */
export function checkUint(
  value: unknown,
  key: string,
  max = Number.MAX_SAFE_INTEGER,
  min = 0,
): number {
  let n: number;
  if (typeof value === 'bigint') {
    if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) {
      return fail('FB_ERR_MSG_FIELD_RANGE', key, `an integer in [${min}, ${max}]`, value);
    }
    n = Number(value);
  } else if (typeof value === 'number') {
    if (!Number.isInteger(value)) return fail('FB_ERR_MSG_FIELD_TYPE', key, 'an integer', value);
    n = value;
  } else {
    return fail('FB_ERR_MSG_FIELD_TYPE', key, 'an unsigned integer', value);
  }
  if (n < min || n > max)
    return fail('FB_ERR_MSG_FIELD_RANGE', key, `an integer in [${min}, ${max}]`, n);
  return n;
}

/** A byte string whose length lies in [minLength, maxLength]. */
export function bytesField(
  map: Fields,
  key: string,
  minLength: number,
  maxLength = minLength,
): Uint8Array {
  const value = present(map, key);
  if (!(value instanceof Uint8Array))
    return fail('FB_ERR_MSG_FIELD_TYPE', key, 'a byte string', value);
  if (value.length < minLength || value.length > maxLength) {
    const rule = minLength === maxLength ? `${minLength} bytes` : `${minLength}-${maxLength} bytes`;
    return fail('FB_ERR_MSG_FIELD_LENGTH', key, rule, value);
  }
  return value;
}

/** Like `bytesField`, or `undefined` when absent. */
export function optBytesField(map: Fields, key: string, minLength: number, maxLength = minLength) {
  return map[key] === undefined ? undefined : bytesField(map, key, minLength, maxLength);
}

/** A text string of at most `maxLength` characters, optionally matching `pattern`. */
export function textField(
  map: Fields,
  key: string,
  maxLength: number,
  pattern?: RegExp,
  minLength = 1,
) {
  const value = present(map, key);
  if (typeof value !== 'string') return fail('FB_ERR_MSG_FIELD_TYPE', key, 'a text string', value);
  if (value.length < minLength || value.length > maxLength) {
    return fail('FB_ERR_MSG_FIELD_LENGTH', key, `${minLength}-${maxLength} characters`, value);
  }
  if (pattern && value.length > 0 && !pattern.test(value))
    return fail('FB_ERR_MSG_FIELD_RANGE', key, `to match ${pattern}`, value);
  return value;
}

/** Like `textField`, or `undefined` when absent. */
export function optTextField(map: Fields, key: string, maxLength: number, pattern?: RegExp) {
  return map[key] === undefined ? undefined : textField(map, key, maxLength, pattern, 0);
}

/** One of a fixed set of text values. */
export function enumField<T extends string>(map: Fields, key: string, values: readonly T[]): T {
  const value = present(map, key);
  if (typeof value !== 'string') return fail('FB_ERR_MSG_FIELD_TYPE', key, 'a text string', value);
  if (!(values as readonly string[]).includes(value)) {
    return fail('FB_ERR_MSG_FIELD_RANGE', key, `one of ${values.join(', ')}`, value);
  }
  return value as T;
}

/** A boolean. */
export function boolField(map: Fields, key: string): boolean {
  const value = present(map, key);
  if (typeof value !== 'boolean') return fail('FB_ERR_MSG_FIELD_TYPE', key, 'a boolean', value);
  return value;
}

/** An array of [minItems, maxItems] items. */
export function arrayField(
  map: Fields,
  key: string,
  minItems: number,
  maxItems: number,
): unknown[] {
  const value = present(map, key);
  if (!Array.isArray(value)) return fail('FB_ERR_MSG_FIELD_TYPE', key, 'an array', value);
  if (value.length < minItems || value.length > maxItems) {
    return fail('FB_ERR_MSG_FIELD_LENGTH', key, `${minItems}-${maxItems} items`, value);
  }
  return value;
}

/** A nested map. */
export function mapField(map: Fields, key: string): Fields {
  return asMap(present(map, key), key);
}
