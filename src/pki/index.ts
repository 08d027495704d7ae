/**
 * Tunnel PKI (ECDSA P-256, @peculiar/x509): issuing — the CA, the edge's
 * server certificate, client certificates and CSR signing for enrollment
 * (`issue.ts`); identity from a peer certificate on the tunnel's accept path
 * (`peer.ts`); the development PKI on disk (`dev.ts`). A Warpgate's own key
 * pair and CSR are made on its side of the wire (wire/csr.ts).
 */
export { createCA, issueServerCert, issueClientCert, signCsr, fingerprint256, POOL_NAME_RE, type CertKeyPem, type EnrolledIdentity } from './issue.js';
export { poolFromPeerCertificate, credentialFromPeerCertificate } from './peer.js';
export { ensureDevPki, DEV_SERVER_NAMES, type DevPki } from './dev.js';
