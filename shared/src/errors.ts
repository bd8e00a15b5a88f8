/**
 * The Fetchback error catalogue: one stable code per failure, classed by who is at fault.
 *
 * - `remote`: untrusted data from a peer was refused (bad signature, expired, wrong hash …).
 *   Retrying the same data gives the same answer; fetch new data instead.
 * - `transport`: the path to the peer failed (broker gone, timeout). Retrying may succeed.
 * - `caller`: the local caller misused an API or supplied bad configuration. Fix the caller.
 *
 * `docs/errors.md` lists every code; a test keeps the two in sync.
 */

/** Who is at fault for an error; decides retry-or-reject on its own. */
export type Fault = 'remote' | 'transport' | 'caller';

interface CatalogueEntry {
  readonly fault: Fault;
  /** HTTP status the server answers with, where the error reaches the HTTP API. */
  readonly http: number;
  /** A fixed message; details go in `FetchbackError.details`, never into the message. */
  readonly message: string;
}

const entry = (fault: Fault, http: number, message: string): CatalogueEntry => ({
  fault,
  http,
  message,
});

/** Every error code Fetchback emits. Codes are stable; messages may be reworded. */
export const ERROR_CATALOGUE = {
  // Decoding of untrusted bytes.
  FB_ERR_CBOR_MALFORMED: entry('remote', 400, 'payload is not well-formed CBOR'),
  FB_ERR_CBOR_TOO_DEEP: entry('remote', 400, 'CBOR nesting exceeds the limit'),
  FB_ERR_CBOR_TOO_LARGE: entry('remote', 413, 'payload exceeds the size limit'),
  FB_ERR_CBOR_TOO_MANY_ITEMS: entry('remote', 400, 'CBOR array or map exceeds the item limit'),
  FB_ERR_CBOR_UNSUPPORTED: entry('remote', 400, 'CBOR item of an unsupported kind'),
  FB_ERR_MSG_NOT_MAP: entry('remote', 400, 'message is not a CBOR map'),
  FB_ERR_MSG_VERSION: entry('remote', 400, 'unknown major protocol version'),
  FB_ERR_MSG_TYPE: entry('remote', 400, 'message type is missing or not the expected one'),
  FB_ERR_MSG_FIELD_MISSING: entry('remote', 400, 'a required field is missing'),
  FB_ERR_MSG_FIELD_TYPE: entry('remote', 400, 'a field has the wrong CBOR type'),
  FB_ERR_MSG_FIELD_RANGE: entry('remote', 400, 'a field is out of its allowed range'),
  FB_ERR_MSG_FIELD_LENGTH: entry('remote', 400, 'a field has a length outside its bounds'),

  // Identifiers and topics.
  FB_ERR_DEVICE_ID_INVALID: entry('caller', 400, 'device id has forbidden characters or length'),
  FB_ERR_TOPIC_INVALID: entry('remote', 400, 'topic does not belong to the Fetchback scheme'),

  // Broker access control (embedded broker hooks, docs/external-broker.md).
  FB_ERR_BROKER_AUTH: entry('remote', 401, 'broker credentials refused'),
  FB_ERR_CLIENT_ID_MISMATCH: entry('remote', 401, 'MQTT client id differs from the username'),
  FB_ERR_TOPIC_FORBIDDEN: entry('remote', 403, 'topic is not permitted for this client'),
  FB_ERR_RETAIN_FORBIDDEN: entry('remote', 403, 'retained publish is not permitted here'),
  FB_ERR_PACKET_TOO_LARGE: entry('remote', 413, 'MQTT packet exceeds the size limit'),
  FB_ERR_QUEUE_FULL: entry('transport', 503, 'offline queue of the client is full'),

  // Trust: verification of manifests, in the order of docs/protocol.md §6.
  FB_ERR_CERT_UNTRUSTED: entry('remote', 400, 'key certificate is not signed by the pinned root'),
  FB_ERR_CERT_EXPIRED: entry('remote', 400, 'key certificate has expired'),
  FB_ERR_CERT_ROLE: entry('remote', 400, 'key certificate does not grant the needed role'),
  FB_ERR_ASSIGNMENT_SIGNATURE: entry('remote', 400, 'assignment signature does not verify'),
  FB_ERR_RELEASE_SIGNATURE: entry('remote', 400, 'release statement signature does not verify'),
  FB_ERR_RELEASE_MISMATCH: entry('remote', 400, 'assignment names another release statement'),
  FB_ERR_WRONG_DEVICE: entry('remote', 400, 'assignment is for another device'),
  FB_ERR_WRONG_HW_CLASS: entry('remote', 400, 'release is for another hardware class'),
  FB_ERR_MANIFEST_EXPIRED: entry('remote', 400, 'assignment has expired'),
  FB_ERR_SEQUENCE_REPLAY: entry('remote', 400, 'assignment sequence number is not above the last'),
  FB_ERR_SECURITY_ROLLBACK: entry('remote', 400, 'release security version is below the device'),
  FB_ERR_IMAGE_TOO_LARGE: entry('remote', 413, 'declared image length exceeds the device limit'),
  FB_ERR_SIGNATURE_INVALID: entry('remote', 400, 'signature does not verify'),

  // Integrity of transferred data.
  FB_ERR_CHUNK_DIGEST: entry('remote', 400, 'chunk does not match its digest in the chunk table'),
  FB_ERR_CHUNK_TABLE_DIGEST: entry('remote', 400, 'chunk table does not match its signed digest'),
  FB_ERR_IMAGE_DIGEST: entry('remote', 400, 'image does not match its signed digest'),

  // Fetch refusals (carried in FETCH_RESP.err).
  FB_ERR_NOT_ASSIGNED: entry('remote', 403, 'object is not assigned to this device'),
  FB_ERR_OBJECT_UNKNOWN: entry('remote', 404, 'no object with this digest'),
  FB_ERR_CHUNK_RANGE: entry('remote', 400, 'chunk index is beyond the object'),
  FB_ERR_BUSY: entry('transport', 503, 'server is over its byte budget; retry later'),

  // Back phase.
  FB_ERR_ACK_UNKNOWN_ASSIGNMENT: entry('remote', 409, 'ACK names an assignment not issued'),
  FB_ERR_ACK_SIGNATURE: entry('remote', 401, 'ACK signature missing or not by the device key'),
  FB_ERR_DEADLINE_MISSED: entry('remote', 400, 'acknowledgement deadline passed'),

  // Transport.
  FB_ERR_TIMEOUT: entry('transport', 504, 'no answer before the deadline'),
  FB_ERR_STALLED: entry('transport', 504, 'download stalled after the retry limit'),
  FB_ERR_BROKER_UNAVAILABLE: entry('transport', 503, 'MQTT broker is not reachable'),
  FB_ERR_RETRIES_EXHAUSTED: entry('transport', 503, 'retries exhausted'),

  // Device side.
  FB_ERR_INSTALL_FAILED: entry('remote', 500, 'installer reported a failure'),
  FB_ERR_HEALTH_CHECK_FAILED: entry('remote', 500, 'health check failed'),
  FB_ERR_HEALTH_CHECK_TIMEOUT: entry('remote', 500, 'health check did not finish in time'),
  FB_ERR_BOOT_LOOP: entry('remote', 500, 'boot counter exceeded its limit'),
  FB_ERR_STORAGE: entry('caller', 500, 'local storage failed'),

  // Caller misuse and configuration.
  FB_ERR_CONFIG_INVALID: entry('caller', 400, 'configuration is invalid'),
  FB_ERR_ARGUMENT: entry('caller', 400, 'invalid argument'),
  FB_ERR_KEY_INVALID: entry('caller', 400, 'key material is invalid'),
  FB_ERR_STATE: entry('caller', 409, 'operation not allowed in the current state'),

  // Server and API.
  FB_ERR_UNAUTHORIZED: entry('caller', 401, 'missing or invalid bearer token'),
  FB_ERR_FORBIDDEN: entry('caller', 403, 'token role does not permit this operation'),
  FB_ERR_NOT_FOUND: entry('caller', 404, 'no such resource'),
  FB_ERR_CONFLICT: entry('caller', 409, 'resource already exists'),
  FB_ERR_VALIDATION: entry('caller', 400, 'request does not match its schema'),
  FB_ERR_BODY_MALFORMED: entry('caller', 400, 'request body is malformed'),
  FB_ERR_BODY_TOO_LARGE: entry('caller', 413, 'request body exceeds the limit'),
  FB_ERR_MEDIA_TYPE: entry('caller', 415, 'request content type is not supported'),
  FB_ERR_UPLOAD_TOO_LARGE: entry('caller', 413, 'uploaded image exceeds the size cap'),
  FB_ERR_RELEASE_EXISTS: entry('caller', 409, 'a release with this name, class and version exists'),
  FB_ERR_DEVICE_EXISTS: entry('caller', 409, 'a device with this id exists'),
  FB_ERR_DEVICE_UNKNOWN: entry('caller', 404, 'no device with this id'),
  FB_ERR_DEVICE_DECOMMISSIONED: entry('caller', 409, 'device is decommissioned'),
  FB_ERR_RELEASE_UNKNOWN: entry('caller', 404, 'no release with this id'),
  FB_ERR_ROLLOUT_UNKNOWN: entry('caller', 404, 'no rollout with this id'),
  FB_ERR_ROLLOUT_CONFLICT: entry('caller', 409, 'devices are already in an active rollout'),
  FB_ERR_ROLLOUT_TRANSITION: entry('caller', 409, 'rollout cannot make this transition'),
  FB_ERR_ROLLOUT_EMPTY: entry('caller', 409, 'rollout target matches no device'),
  FB_ERR_SERVER_UNREACHABLE: entry('transport', 503, 'update server is not reachable'),
  FB_ERR_INTERNAL: entry('transport', 500, 'internal error'),
} as const satisfies Record<string, CatalogueEntry>;

/** A stable Fetchback error code. */
export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** Every code in the catalogue, in declaration order. */
export const ERROR_CODES = Object.keys(ERROR_CATALOGUE) as ErrorCode[];

/** An error with a stable code, a fault class and structured details. */
export class FetchbackError extends Error {
  readonly code: ErrorCode;
  readonly fault: Fault;
  readonly httpStatus: number;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, detail?: string, details: Record<string, unknown> = {}) {
    const known = ERROR_CATALOGUE[code];
    super(detail ? `${known.message}: ${detail}` : known.message);
    this.name = 'FetchbackError';
    this.code = code;
    this.fault = known.fault;
    this.httpStatus = known.http;
    this.details = details;
  }

  /** True when retrying the same operation later may succeed. */
  get retryable(): boolean {
    return this.fault === 'transport';
  }
}

/** Creates a coded error. */
export function fbError(
  code: ErrorCode,
  detail?: string,
  details?: Record<string, unknown>,
): FetchbackError {
  return new FetchbackError(code, detail, details);
}

/** True when `value` is a FetchbackError, optionally with the given code. */
export function isFetchbackError(value: unknown, code?: ErrorCode): value is FetchbackError {
  return value instanceof FetchbackError && (code === undefined || value.code === code);
}

/** True when `code` is a code of the catalogue (for codes that arrive over the wire). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CATALOGUE, code);
}
