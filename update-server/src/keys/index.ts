export {
  type CertifyOptions,
  DEFAULT_CERT_VALIDITY_DAYS,
  KEY_FILES,
  type ServerKeys,
  certificatesExpireAt,
  initKeys,
  keysExist,
  loadServerKeys,
  renewCertificates,
} from './server-keys.js';
