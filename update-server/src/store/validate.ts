/**
 * Checks for names that reach the store from outside (API bodies, CLI flags). Each returns the
 * narrowed value or throws a coded error reading `"field" expected <rule>, got <actual>`.
 */
import { LIMITS, fbError } from '@fetchback/shared';

/** Hardware classes, release names and tag keys: the protocol's name alphabet. */
const NAME_PATTERN = /^[A-Za-z0-9._-]+$/;
const VERSION_PATTERN = /^[0-9A-Za-z.+_-]+$/;
/** Most tags one device may carry. */
export const MAX_TAGS = 32;
/** Longest tag value, in characters. */
export const MAX_TAG_VALUE_LENGTH = 128;

function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value.slice(0, 80)) : typeof value;
}

function checkName(field: string, value: unknown, maxLength: number, pattern: RegExp): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxLength) {
    throw fbError(
      'FB_ERR_ARGUMENT',
      `"${field}" expected 1-${maxLength} characters, got ${shown(value)}`,
    );
  }
  if (!pattern.test(value)) {
    throw fbError('FB_ERR_ARGUMENT', `"${field}" expected ${pattern}, got ${shown(value)}`);
  }
  return value;
}

export function assertHardwareClass(value: unknown, field = 'hardwareClass'): string {
  return checkName(field, value, LIMITS.maxClassLength, NAME_PATTERN);
}

export function assertReleaseName(value: unknown, field = 'name'): string {
  return checkName(field, value, LIMITS.maxNameLength, NAME_PATTERN);
}

export function assertVersion(value: unknown, field = 'version'): string {
  return checkName(field, value, LIMITS.maxVersionLength, VERSION_PATTERN);
}

export function assertTagKey(value: unknown): string {
  return checkName('tags', value, 64, NAME_PATTERN);
}

/** A tag map: at most `MAX_TAGS` entries, keys in the name alphabet, values of bounded text. */
export function assertTags(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw fbError('FB_ERR_ARGUMENT', `"tags" expected an object, got ${shown(value)}`);
  }
  const entries = Object.entries(value);
  if (entries.length > MAX_TAGS) {
    throw fbError('FB_ERR_ARGUMENT', `"tags" expected at most ${MAX_TAGS}, got ${entries.length}`);
  }
  const tags: Record<string, string> = {};
  for (const [key, tagValue] of entries) {
    assertTagKey(key);
    if (typeof tagValue !== 'string' || tagValue.length > MAX_TAG_VALUE_LENGTH) {
      throw fbError(
        'FB_ERR_ARGUMENT',
        `"tags.${key}" expected text of at most ${MAX_TAG_VALUE_LENGTH}, got ${shown(tagValue)}`,
      );
    }
    tags[key] = tagValue;
  }
  return tags;
}

/** Parses `k=v` into a tag entry (CLI flags and query strings). */
export function parseTagPair(pair: string): [string, string] {
  const at = pair.indexOf('=');
  if (at <= 0) throw fbError('FB_ERR_ARGUMENT', `"tag" expected key=value, got ${shown(pair)}`);
  const key = assertTagKey(pair.slice(0, at));
  return [key, pair.slice(at + 1)];
}
