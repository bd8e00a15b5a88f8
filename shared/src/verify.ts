/**
 * The manifest verifier: the one place that decides whether a device may act on a manifest.
 * It checks, in this order and nothing before it (`docs/protocol.md` §6.3):
 *
 * 1. every key certificate against the pinned root (signature, issuer, key id, expiry);
 * 2. the assignment signature, by a key certified for `assignment`;
 * 3. the release statement signature, by a key certified for `release`, and that the
 *    assignment names exactly this release statement;
 * 4. the device id; 5. the hardware class; 6. the assignment's expiry (freeze attacks);
 * 7. the sequence number (replay); 8. the security version (rollback);
 * 9. the declared image length (endless data).
 *
 * Only `ManifestVerifier.verify` creates a `VerifiedManifest`, so code that needs one cannot
 * skip a step.
 */
import { bytesEqual, toHex } from './digest.js';
import { fbError } from './errors.js';
import { keyId, releaseDigest, verifyBody } from './keys.js';
import type {
  AssignmentBody,
  KeyRole,
  ManifestMessage,
  ReleaseBody,
  SignedRelease,
} from './messages.js';

/** What the device pins and knows about itself. */
export interface VerifierOptions {
  /** The pinned root public key (32 bytes). */
  readonly rootPublicKey: Uint8Array;
  readonly deviceId: string;
  readonly hardwareClass: string;
  /** Largest image this device accepts, in bytes. */
  readonly maxImageBytes: number;
  /** Clock, Unix milliseconds; injectable for tests. */
  readonly now?: () => number;
}

/** The anti-rollback state the device persisted. */
export interface TrustState {
  /** Highest assignment sequence number accepted so far (0 for none). */
  readonly lastSequence: number;
  /** Highest security version installed so far. */
  readonly securityVersion: number;
}

const brand: unique symbol = Symbol('VerifiedManifest');

/** A manifest that passed every check. Only `ManifestVerifier` constructs one. */
export interface VerifiedManifest {
  readonly [brand]: true;
  readonly assignment: AssignmentBody;
  readonly release: ReleaseBody;
  /** Digest of the release statement body (= `assignment.rel`). */
  readonly releaseDigest: Uint8Array;
  readonly manifest: ManifestMessage;
}

/** Verifies manifests for one device. */
export class ManifestVerifier {
  private readonly options: VerifierOptions;
  private readonly rootKid: Uint8Array;

  constructor(options: VerifierOptions) {
    if (options.rootPublicKey.length !== 32) {
      throw fbError('FB_ERR_KEY_INVALID', '"rootPublicKey" expected 32 bytes');
    }
    this.options = options;
    this.rootKid = keyId(options.rootPublicKey);
  }

  /**
   * Runs every check in order and returns the verified manifest.
   *
   * @throws FetchbackError with the code of the first check that failed:
   *   `FB_ERR_CERT_UNTRUSTED`, `FB_ERR_CERT_EXPIRED`, `FB_ERR_CERT_ROLE`,
   *   `FB_ERR_ASSIGNMENT_SIGNATURE`, `FB_ERR_RELEASE_SIGNATURE`, `FB_ERR_RELEASE_MISMATCH`,
   *   `FB_ERR_WRONG_DEVICE`, `FB_ERR_WRONG_HW_CLASS`, `FB_ERR_MANIFEST_EXPIRED`,
   *   `FB_ERR_SEQUENCE_REPLAY`, `FB_ERR_SECURITY_ROLLBACK`, `FB_ERR_IMAGE_TOO_LARGE`.
   */
  verify(manifest: ManifestMessage, state: TrustState): VerifiedManifest {
    const nowMs = (this.options.now ?? Date.now)();
    const keys = this.trustedKeys(manifest, nowMs);
    const { asg, rel } = manifest;

    this.checkAssignmentSignature(manifest, keys);
    const digest = this.checkRelease(rel, asg.body, keys);

    if (asg.body.dev !== this.options.deviceId) {
      throw fbError('FB_ERR_WRONG_DEVICE', `for ${asg.body.dev}`);
    }
    if (rel.body.hw !== this.options.hardwareClass) {
      throw fbError(
        'FB_ERR_WRONG_HW_CLASS',
        `for ${rel.body.hw}, device is ${this.options.hardwareClass}`,
      );
    }
    if (asg.body.exp * 1000 <= nowMs) {
      throw fbError('FB_ERR_MANIFEST_EXPIRED', `expired at ${asg.body.exp}`);
    }
    if (asg.body.seq <= state.lastSequence) {
      throw fbError(
        'FB_ERR_SEQUENCE_REPLAY',
        `sequence ${asg.body.seq}, last ${state.lastSequence}`,
      );
    }
    if (rel.body.secv < state.securityVersion) {
      throw fbError('FB_ERR_SECURITY_ROLLBACK', `${rel.body.secv} below ${state.securityVersion}`);
    }
    if (rel.body.size > this.options.maxImageBytes) {
      throw fbError(
        'FB_ERR_IMAGE_TOO_LARGE',
        `${rel.body.size} bytes, limit ${this.options.maxImageBytes}`,
      );
    }

    return {
      [brand]: true,
      assignment: asg.body,
      release: rel.body,
      releaseDigest: digest,
      manifest,
    };
  }

  /** Step 1: every certificate must be signed by the pinned root and unexpired. */
  private trustedKeys(manifest: ManifestMessage, nowMs: number): Map<string, TrustedKey> {
    const keys = new Map<string, TrustedKey>();
    for (const cert of manifest.certs) {
      const { body, sig } = cert;
      const signedByRoot =
        bytesEqual(body.iss, this.rootKid) &&
        bytesEqual(sig.kid, this.rootKid) &&
        verifyBody('cert', body, sig, this.options.rootPublicKey);
      if (!signedByRoot || !bytesEqual(body.kid, keyId(body.pub))) {
        throw fbError(
          'FB_ERR_CERT_UNTRUSTED',
          `certificate for key ${toHex(body.kid).slice(0, 16)}`,
        );
      }
      if (body.exp * 1000 <= nowMs) {
        throw fbError(
          'FB_ERR_CERT_EXPIRED',
          `key ${toHex(body.kid).slice(0, 16)} expired at ${body.exp}`,
        );
      }
      keys.set(toHex(body.kid), { publicKey: body.pub, role: body.role });
    }
    return keys;
  }

  /** Step 2: the assignment is signed by a key certified for `assignment`. */
  private checkAssignmentSignature(manifest: ManifestMessage, keys: Map<string, TrustedKey>) {
    const { sig, body } = manifest.asg;
    const key = keys.get(toHex(sig.kid));
    if (!key) throw fbError('FB_ERR_ASSIGNMENT_SIGNATURE', 'signed by an uncertified key');
    if (key.role !== 'assignment')
      throw fbError('FB_ERR_CERT_ROLE', `assignment signed by a ${key.role} key`);
    if (!verifyBody('assignment', body, sig, key.publicKey)) {
      throw fbError('FB_ERR_ASSIGNMENT_SIGNATURE');
    }
  }

  /** Step 3: one valid signature by a `release` key, and the assignment names this release. */
  private checkRelease(rel: SignedRelease, asg: AssignmentBody, keys: Map<string, TrustedKey>) {
    let roleMismatch = false;
    const signed = rel.sigs.some((sig) => {
      const key = keys.get(toHex(sig.kid));
      if (key && key.role !== 'release') roleMismatch = true;
      return key?.role === 'release' && verifyBody('release', rel.body, sig, key.publicKey);
    });
    if (!signed) {
      if (roleMismatch) throw fbError('FB_ERR_CERT_ROLE', 'release signed by a non-release key');
      throw fbError('FB_ERR_RELEASE_SIGNATURE');
    }
    const digest = releaseDigest(rel.body);
    if (!bytesEqual(digest, asg.rel)) throw fbError('FB_ERR_RELEASE_MISMATCH');
    return digest;
  }
}

interface TrustedKey {
  readonly publicKey: Uint8Array;
  readonly role: KeyRole;
}
