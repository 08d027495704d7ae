/**
 * The wire: everything the edge and the Warpgate share, and the only part of
 * this repository the Warpgate and the edge's tunnel end both import — the
 * reserved names and identity headers (`contract.ts`), the identity assertion
 * (`jwt.ts` signs and verifies, `assertion.ts` is the verifier with its cache),
 * the tunnel's key pairs and the enrollment request (`csr.ts`), and the lean
 * HTTP/2 codec both ends speak (`h2/`, RFC 9113 + RFC 7541).
 * Neither end reaches into the other's internals; they meet here.
 */
export * from './contract.js';
export { KeySet, mintJwt, loadSigningKey, generateSigningKeyPem, jwkOf, type VerifyResult, type SigningKey } from './jwt.js';
export { AssertionVerifier, headerSafe, type Verdict, type Verified } from './assertion.js';
export { H2Connection, H2Stream, type ClientStreamSink, type ServerStreamSink, type HeadSource, type Role } from './h2/connection.js';
export { DEFAULT_LIMITS, type H2Limits } from './h2/limits.js';
export { HpackDecoder, HpackEncoder, DEFAULT_NO_INDEX, type HpackEncoderOptions } from './h2/hpack.js';
export { createCsr, newTunnelKeyPair, privateKeyPem, subjectName, toPem, MAX_CSR_PEM, TUNNEL_KEY_ALGORITHM, TUNNEL_SIGNING_ALGORITHM } from './csr.js';
