/**
 * Keeps docs/errors.md and ERROR_CATALOGUE in sync: every code is documented once, with its fault
 * class, HTTP status and the section it is declared under in shared/src/errors.ts, and the
 * document lists no code the catalogue lacks.
 */
import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import {
  ERROR_CATALOGUE,
  ERROR_CODES,
  type ErrorCode,
  FetchbackError,
  fbError,
  isErrorCode,
  isFetchbackError,
} from '@fetchback/shared';

const DOC = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const SOURCE = readFileSync(new URL('../src/errors.ts', import.meta.url), 'utf8');

interface DocRow {
  readonly code: string;
  readonly fault: string;
  readonly http: number;
  readonly section: string;
  readonly meaning: string;
  readonly action: string;
}

/** Rows of the form `| \`FB_ERR_X\` | fault | 400 | meaning | action |` under `## Section`. */
function parseDoc(markdown: string): DocRow[] {
  const rows: DocRow[] = [];
  let section = '';
  for (const line of markdown.split('\n')) {
    const heading = /^## (.+)$/.exec(line);
    if (heading) section = heading[1]!.trim();
    const row = /^\| `(FB_ERR_[A-Z0-9_]+)` \|(.*)\|\s*$/.exec(line);
    if (!row) continue;
    const cells = row[2]!.split(' | ').map((c) => c.trim());
    rows.push({
      code: row[1]!,
      fault: cells[0] ?? '',
      http: Number(cells[1]),
      section,
      meaning: cells[2] ?? '',
      action: cells[3] ?? '',
    });
  }
  return rows;
}

/** The section comment (`// Trust: …`) each code is declared under, up to `:`, `(` or `.`. */
function sourceSections(source: string): Map<string, string> {
  const body = source.slice(source.indexOf('ERROR_CATALOGUE = {'), source.indexOf('} as const'));
  const sections = new Map<string, string>();
  let section = '';
  for (const line of body.split('\n')) {
    const comment = /^\s*\/\/\s*([^:(.]+)/.exec(line);
    if (comment) section = comment[1]!.trim();
    const code = /^\s*(FB_ERR_[A-Z0-9_]+):/.exec(line);
    if (code) sections.set(code[1]!, section);
  }
  return sections;
}

const rows = parseDoc(DOC);
const byCode = new Map(rows.map((r) => [r.code, r]));

describe('docs/errors.md is in sync with ERROR_CATALOGUE', () => {
  it('parses a table row for most of the catalogue (the parser itself works)', () => {
    expect(rows.length).toBeGreaterThan(ERROR_CODES.length / 2);
  });

  for (const code of ERROR_CODES) {
    it(`documents ${code} with its fault class, HTTP status, meaning and action`, () => {
      const row = byCode.get(code);
      expect(row, `${code} is missing from docs/errors.md`).toBeDefined();
      expect(row!.fault).toBe(ERROR_CATALOGUE[code].fault);
      expect(row!.http).toBe(ERROR_CATALOGUE[code].http);
      expect(row!.meaning.length).toBeGreaterThan(10);
      expect(row!.action.length).toBeGreaterThan(5);
    });
  }

  it('lists no code the catalogue lacks, and each code once', () => {
    const unknown = rows.map((r) => r.code).filter((c) => !isErrorCode(c));
    expect(unknown).toEqual([]);
    expect(rows.length).toBe(new Set(rows.map((r) => r.code)).size);
  });

  it('documents each code under the section it is declared in', () => {
    const sections = sourceSections(SOURCE);
    expect(sections.size).toBe(ERROR_CODES.length);
    for (const code of ERROR_CODES) {
      expect(byCode.get(code)?.section, code).toBe(sections.get(code));
    }
  });
});

describe('the catalogue', () => {
  it('gives every code a fault class (remote, transport, caller) and an HTTP error status', () => {
    for (const code of ERROR_CODES) {
      const { fault, http, message } = ERROR_CATALOGUE[code];
      expect(['remote', 'transport', 'caller'], code).toContain(fault);
      expect(http >= 400 && http <= 599, code).toBe(true);
      expect(message.length, code).toBeGreaterThan(0);
    }
  });

  it('makes an error retryable exactly when its fault class is transport', () => {
    for (const code of ERROR_CODES) {
      expect(fbError(code).retryable, code).toBe(ERROR_CATALOGUE[code].fault === 'transport');
    }
  });

  it('carries code, fault, status and details on FetchbackError', () => {
    const err = fbError('FB_ERR_BUSY', 'over budget', { deviceId: 'd1' });
    expect(err).toBeInstanceOf(FetchbackError);
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('FB_ERR_BUSY');
    expect(err.fault).toBe('transport');
    expect(err.httpStatus).toBe(503);
    expect(err.details).toEqual({ deviceId: 'd1' });
    expect(err.message).toBe('server is over its byte budget; retry later: over budget');
    expect(isFetchbackError(err, 'FB_ERR_BUSY')).toBe(true);
    expect(isFetchbackError(err, 'FB_ERR_TIMEOUT' as ErrorCode)).toBe(false);
    expect(isFetchbackError(new Error('x'))).toBe(false);
  });

  it('recognises only catalogue codes arriving over the wire', () => {
    expect(isErrorCode('FB_ERR_BUSY')).toBe(true);
    expect(isErrorCode('FB_ERR_NOPE')).toBe(false);
    expect(isErrorCode('toString')).toBe(false);
    expect(isErrorCode(42)).toBe(false);
  });
});
