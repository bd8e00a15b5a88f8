/** The JSON shapes of the HTTP API (`docs/api.md`), as the client sees them. */
export type Role = 'admin' | 'operator' | 'viewer';

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

export interface Device {
  id: string;
  hardwareClass: string;
  tags: Record<string, string>;
  status: 'active' | 'decommissioned';
  state: string | null;
  currentVersion: string | null;
  online: boolean;
  lastSeen: string | null;
  createdAt: string;
  decommissionedAt: string | null;
}

/** What `fetchback-agent --config` reads; carries the device secret. */
export interface AgentConfig {
  brokerUrl: string;
  deviceId: string;
  username: string;
  password: string;
  rootPublicKey: string;
  hardwareClass: string;
  topicPrefix: string;
}

export interface AssignmentView {
  seq: number;
  releaseId: string;
  rolloutId: string | null;
  issuedAt: string;
  expiresAt: string;
}

export interface DeviceDetail {
  device: Device;
  /** The key pinned from the device's first signed ACK, or null. */
  deviceKey: { publicKey: string; keyId: string } | null;
  history: {
    assignments: AssignmentView[];
    acks: {
      requestId: string;
      seq: number;
      step: string;
      code: string;
      version: string | null;
      at: string;
      signed?: boolean;
      receivedAt: string;
    }[];
    status: {
      state: string;
      code: string | null;
      version: string | null;
      seq: number | null;
      have: number | null;
      total: number | null;
      detail: string | null;
      at: string;
      receivedAt: string;
    }[];
  };
}

export interface Release {
  id: string;
  name: string;
  version: string;
  hardwareClass: string;
  securityVersion: number;
  size: number;
  imageDigest: string;
  chunkBytes: number;
  chunkCount: number;
  tableDigest: string;
  statementDigest: string;
  /** Base64 CBOR of the signed statement; only from `getRelease`. */
  statement?: string;
  createdAt: string;
}

export interface Token {
  id: string;
  name: string;
  role: Role;
  createdAt: string;
  createdBy: string | null;
  revokedAt: string | null;
  /** The secret; only in the reply that creates the token. */
  token?: string;
}
