/**
 * ManifestVerifier: every check refuses with its own code, and the checks run in the order of
 * docs/protocol.md §6.3.
 */
import { describe, expect, it } from 'vitest';

import {
  type ErrorCode,
  type KeyCertificate,
  type ManifestMessage,
  ManifestVerifier,
  type TrustState,
  decodeManifest,
  encodeManifest,
  isFetchbackError,
  issueCertificate,
  keyId,
  signBody,
} from '@fetchback/shared';

import {
  ASSIGNMENT_KEY,
  DAY_S,
  DEVICE_ID,
  HW_CLASS,
  type Loose,
  type ManifestParts,
  NOW_MS,
  RELEASE_KEY,
  ROGUE_KEY,
  ROOT,
  T0,
  buildManifest,
} from './fixtures.js';

const FRESH: TrustState = { lastSequence: 0, securityVersion: 0 };
const MAX_IMAGE_BYTES = 1 << 30;

function verifier(maxImageBytes = MAX_IMAGE_BYTES): ManifestVerifier {
  return new ManifestVerifier({
    rootPublicKey: ROOT.publicKey,
    deviceId: DEVICE_ID,
    hardwareClass: HW_CLASS,
    maxImageBytes,
    now: () => NOW_MS,
  });
}

/** Sends the manifest over the wire and back first, as a device would receive it. */
function verifyCode(
  manifest: ManifestMessage,
  state: TrustState = FRESH,
  maxImageBytes = MAX_IMAGE_BYTES,
): string {
  const received = decodeManifest(encodeManifest(manifest));
  try {
    verifier(maxImageBytes).verify(received, state);
  } catch (err) {
    return isFetchbackError(err) ? err.code : `not a FetchbackError: ${String(err)}`;
  }
  return 'verified';
}

function flip(value: unknown, field: string): unknown {
  if (value instanceof Uint8Array) {
    const out = Uint8Array.from(value);
    const at = out.length >> 1;
    out[at] = (out[at] as number) ^ 0x01;
    return out;
  }
  if (typeof value === 'number') return value ^ 1;
  if (field === 'role') return value === 'release' ? 'assignment' : 'release';
  if (typeof value === 'string') return value.slice(0, -1) + (value.endsWith('1') ? '2' : '1');
  throw new Error(`no flip for ${field}`);
}

function clone(m: ManifestMessage): Loose {
  return structuredClone(m) as Loose;
}

function certs(overrides: { expiresAt?: number; issuer?: typeof ROOT } = {}): KeyCertificate[] {
  const issuer = overrides.issuer ?? ROOT;
  const exp = overrides.expiresAt ?? T0 + 365 * DAY_S;
  return [
    issueCertificate(issuer, RELEASE_KEY.publicKey, 'release', T0, exp),
    issueCertificate(issuer, ASSIGNMENT_KEY.publicKey, 'assignment', T0, exp),
  ];
}

describe('ManifestVerifier accepts a good manifest', () => {
  it('verifies a manifest signed by certified keys and returns its bodies', () => {
    const manifest = buildManifest();
    const verified = verifier().verify(decodeManifest(encodeManifest(manifest)), FRESH);
    expect(verified.assignment.dev).toBe(DEVICE_ID);
    expect(verified.release.hw).toBe(HW_CLASS);
    expect(verified.releaseDigest).toEqual(manifest.asg.body.rel);
  });

  it('accepts the boundaries: next sequence, equal security version, length at the limit', () => {
    const state = { lastSequence: 6, securityVersion: 3 };
    expect(verifyCode(buildManifest(), state, 200_000)).toBe('verified');
  });

  it('accepts a release signed by an uncertified key as well as a certified release key', () => {
    expect(verifyCode(buildManifest({ releaseKeys: [ROGUE_KEY, RELEASE_KEY] }))).toBe('verified');
  });

  it('refuses to construct with a root key that is not 32 bytes (FB_ERR_KEY_INVALID)', () => {
    expect(
      () =>
        new ManifestVerifier({
          rootPublicKey: new Uint8Array(31),
          deviceId: DEVICE_ID,
          hardwareClass: HW_CLASS,
          maxImageBytes: 1,
        }),
    ).toThrow(expect.objectContaining({ code: 'FB_ERR_KEY_INVALID' }));
  });
});

describe('a flipped byte in any signed field is refused', () => {
  const good = buildManifest();

  const assignmentFields = Object.keys(good.asg.body);
  const releaseFields = Object.keys(good.rel.body);
  const certFields = Object.keys(good.certs[0]!.body);

  it('the fixture signs every field the protocol defines for each body', () => {
    expect([...assignmentFields].sort()).toEqual([
      'ackby',
      'dev',
      'exp',
      'iat',
      'rel',
      'ro',
      'seq',
    ]);
    expect([...releaseFields].sort()).toEqual(
      ['cbytes', 'ctab', 'digest', 'hw', 'iat', 'name', 'secv', 'size', 'ver'].sort(),
    );
    expect([...certFields].sort()).toEqual(['exp', 'iat', 'iss', 'kid', 'pub', 'role']);
  });

  for (const field of assignmentFields) {
    it(`assignment field "${field}" changed after signing: FB_ERR_ASSIGNMENT_SIGNATURE`, () => {
      const m = clone(good);
      m.asg.body[field] = flip(m.asg.body[field], field);
      expect(verifyCode(m as ManifestMessage)).toBe('FB_ERR_ASSIGNMENT_SIGNATURE');
    });
  }

  for (const field of releaseFields) {
    it(`release field "${field}" changed after signing gives FB_ERR_RELEASE_SIGNATURE`, () => {
      const m = clone(good);
      m.rel.body[field] = flip(m.rel.body[field], field);
      expect(verifyCode(m as ManifestMessage)).toBe('FB_ERR_RELEASE_SIGNATURE');
    });
  }

  for (const which of [0, 1]) {
    for (const field of certFields) {
      it(`cert ${which} field "${field}" changed after signing: FB_ERR_CERT_UNTRUSTED`, () => {
        const m = clone(good);
        m.certs[which].body[field] = flip(m.certs[which].body[field], field);
        expect(verifyCode(m as ManifestMessage)).toBe('FB_ERR_CERT_UNTRUSTED');
      });
    }
  }

  it('a field added to a signed body after signing is refused (unknown fields are signed)', () => {
    const m = clone(good);
    m.asg.body.extra = 1;
    expect(verifyCode(m as ManifestMessage)).toBe('FB_ERR_ASSIGNMENT_SIGNATURE');
    const r = clone(good);
    r.rel.body.extra = 1;
    expect(verifyCode(r as ManifestMessage)).toBe('FB_ERR_RELEASE_SIGNATURE');
  });

  const signatures: [string, (m: Loose) => Loose, ErrorCode][] = [
    ['the assignment signature', (m) => m.asg.sig, 'FB_ERR_ASSIGNMENT_SIGNATURE'],
    ['the release signature', (m) => m.rel.sigs[0], 'FB_ERR_RELEASE_SIGNATURE'],
    ['a certificate signature', (m) => m.certs[1].sig, 'FB_ERR_CERT_UNTRUSTED'],
  ];
  for (const [what, pick, code] of signatures) {
    for (const part of ['sig', 'kid']) {
      it(`a flipped byte in "${part}" of ${what} gives ${code}`, () => {
        const m = clone(good);
        pick(m)[part] = flip(pick(m)[part], part);
        expect(verifyCode(m as ManifestMessage)).toBe(code);
      });
    }
  }
});

describe('each failed check is refused with its own code', () => {
  const cases: [string, () => string, ErrorCode][] = [
    [
      'a certificate signed by a key other than the pinned root',
      () => verifyCode(buildManifest({ certs: certs({ issuer: ROGUE_KEY }) })),
      'FB_ERR_CERT_UNTRUSTED',
    ],
    [
      'a certificate naming the root as issuer but signed by another key',
      () => {
        const [cert] = certs({ issuer: ROGUE_KEY });
        const body = { ...cert!.body, iss: keyId(ROOT.publicKey) };
        const sig = { ...signBody('cert', body, ROGUE_KEY), kid: keyId(ROOT.publicKey) };
        return verifyCode(buildManifest({ certs: [{ body, sig }, certs()[1]!] }));
      },
      'FB_ERR_CERT_UNTRUSTED',
    ],
    [
      'a root-signed certificate whose key id is not the hash of its key',
      () => {
        const [cert] = certs();
        const body = { ...cert!.body, kid: keyId(ROGUE_KEY.publicKey) };
        return verifyCode(
          buildManifest({ certs: [{ body, sig: signBody('cert', body, ROOT) }, certs()[1]!] }),
        );
      },
      'FB_ERR_CERT_UNTRUSTED',
    ],
    [
      'an expired certificate',
      () => verifyCode(buildManifest({ certs: certs({ expiresAt: T0 + 3600 }) })),
      'FB_ERR_CERT_EXPIRED',
    ],
    [
      'a certificate that expires at this very second',
      () => verifyCode(buildManifest({ certs: certs({ expiresAt: NOW_MS / 1000 }) })),
      'FB_ERR_CERT_EXPIRED',
    ],
    [
      'an assignment signed by an uncertified key',
      () => verifyCode(buildManifest({ assignmentKey: ROGUE_KEY })),
      'FB_ERR_ASSIGNMENT_SIGNATURE',
    ],
    [
      'an assignment with no assignment-key certificate',
      () => verifyCode(buildManifest({ certs: [certs()[0]!] })),
      'FB_ERR_ASSIGNMENT_SIGNATURE',
    ],
    [
      'an assignment signed by a release key',
      () => verifyCode(buildManifest({ assignmentKey: RELEASE_KEY })),
      'FB_ERR_CERT_ROLE',
    ],
    [
      'a release statement signed only by the assignment key',
      () => verifyCode(buildManifest({ releaseKeys: [ASSIGNMENT_KEY] })),
      'FB_ERR_CERT_ROLE',
    ],
    [
      'a release statement signed only by an uncertified key',
      () => verifyCode(buildManifest({ releaseKeys: [ROGUE_KEY] })),
      'FB_ERR_RELEASE_SIGNATURE',
    ],
    [
      'a release statement that is not the one the assignment names',
      () => verifyCode(buildManifest({ assignment: { rel: new Uint8Array(32).fill(7) } })),
      'FB_ERR_RELEASE_MISMATCH',
    ],
    [
      'an assignment for another device',
      () => verifyCode(buildManifest({ assignment: { dev: 'dev-0002' } })),
      'FB_ERR_WRONG_DEVICE',
    ],
    [
      'a release for another hardware class',
      () => verifyCode(buildManifest({ release: { hw: 'rpi5' } })),
      'FB_ERR_WRONG_HW_CLASS',
    ],
    [
      'an expired assignment',
      () => verifyCode(buildManifest({ assignment: { exp: T0 + 3600 } })),
      'FB_ERR_MANIFEST_EXPIRED',
    ],
    [
      'an assignment that expires at this very second',
      () => verifyCode(buildManifest({ assignment: { exp: NOW_MS / 1000 } })),
      'FB_ERR_MANIFEST_EXPIRED',
    ],
    [
      'a sequence number below the last accepted',
      () => verifyCode(buildManifest(), { lastSequence: 8, securityVersion: 0 }),
      'FB_ERR_SEQUENCE_REPLAY',
    ],
    [
      'a sequence number equal to the last accepted',
      () => verifyCode(buildManifest(), { lastSequence: 7, securityVersion: 0 }),
      'FB_ERR_SEQUENCE_REPLAY',
    ],
    [
      'a security version below the installed one',
      () => verifyCode(buildManifest(), { lastSequence: 0, securityVersion: 4 }),
      'FB_ERR_SECURITY_ROLLBACK',
    ],
    [
      'a declared length above the device limit',
      () => verifyCode(buildManifest(), FRESH, 199_999),
      'FB_ERR_IMAGE_TOO_LARGE',
    ],
  ];
  for (const [what, run, code] of cases) {
    it(`refuses ${what} with ${code}`, () => {
      expect(run()).toBe(code);
    });
  }
});

describe('the checks run in the order of docs/protocol.md §6.3', () => {
  interface Fault {
    readonly code: ErrorCode;
    readonly apply: (c: Scenario) => void;
  }
  interface Scenario {
    parts: ManifestParts & { assignment: object; release: object };
    state: { lastSequence: number; securityVersion: number };
    maxImageBytes: number;
  }

  // In verification order: each fault is detected by the step that carries its code.
  const ORDER: Fault[] = [
    {
      code: 'FB_ERR_CERT_UNTRUSTED',
      apply: (c) => (c.parts.certs = certs({ issuer: ROGUE_KEY, expiresAt: T0 + 1 })),
    },
    { code: 'FB_ERR_CERT_EXPIRED', apply: (c) => (c.parts.certs = certs({ expiresAt: T0 + 1 })) },
    { code: 'FB_ERR_ASSIGNMENT_SIGNATURE', apply: (c) => (c.parts.assignmentKey = ROGUE_KEY) },
    { code: 'FB_ERR_RELEASE_SIGNATURE', apply: (c) => (c.parts.releaseKeys = [ROGUE_KEY]) },
    {
      code: 'FB_ERR_RELEASE_MISMATCH',
      apply: (c) => Object.assign(c.parts.assignment, { rel: new Uint8Array(32).fill(7) }),
    },
    {
      code: 'FB_ERR_WRONG_DEVICE',
      apply: (c) => Object.assign(c.parts.assignment, { dev: 'dev-0002' }),
    },
    { code: 'FB_ERR_WRONG_HW_CLASS', apply: (c) => Object.assign(c.parts.release, { hw: 'x86' }) },
    {
      code: 'FB_ERR_MANIFEST_EXPIRED',
      apply: (c) => Object.assign(c.parts.assignment, { exp: T0 }),
    },
    { code: 'FB_ERR_SEQUENCE_REPLAY', apply: (c) => (c.state.lastSequence = 100) },
    { code: 'FB_ERR_SECURITY_ROLLBACK', apply: (c) => (c.state.securityVersion = 100) },
    { code: 'FB_ERR_IMAGE_TOO_LARGE', apply: (c) => (c.maxImageBytes = 10) },
  ];

  for (let first = 0; first < ORDER.length; first++) {
    const fault = ORDER[first]!;
    it(`with every fault from ${fault.code} on present, ${fault.code} is reported`, () => {
      const scenario: Scenario = {
        parts: { assignment: {}, release: {} },
        state: { lastSequence: 0, securityVersion: 0 },
        maxImageBytes: MAX_IMAGE_BYTES,
      };
      // Later faults are applied first: where two touch the same part (the certificates),
      // the earlier one's version is both untrusted and expired.
      for (const later of ORDER.slice(first).reverse()) later.apply(scenario);
      const manifest = buildManifest(scenario.parts);
      expect(verifyCode(manifest, scenario.state, scenario.maxImageBytes)).toBe(fault.code);
    });
  }

  it('a manifest for another device that has also expired gives FB_ERR_WRONG_DEVICE', () => {
    const manifest = buildManifest({ assignment: { dev: 'dev-0002', exp: T0 } });
    expect(verifyCode(manifest)).toBe('FB_ERR_WRONG_DEVICE');
  });
});
