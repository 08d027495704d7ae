/**
 * Identity: what an allowed request carries to the application — the
 * assertion (minted per session, `assertions.ts`, signed with the store's
 * keys, `signer.ts`), the forwarded head (`forward.ts`), request ids.
 */
export { Signer, RETIRED_KEY_OVERLAP_MS, type PrincipalIdentity } from './signer.js';
export { Assertions } from './assertions.js';
export { encodeForwarded, type ForwardedRequest } from './forward.js';
export { isClientRoutingHeader } from './routing-headers.js';
export { nextRequestId } from './request-id.js';
export { forwardTraceparent, validTraceparent, sampledFlag, traceIdOf } from './trace.js';
