export { Signer, RETIRED_KEY_OVERLAP_MS, type PrincipalIdentity } from './signer.js';

export { copyForwardableHeaders, stripReserved } from './headers.js';
export { nextRequestId } from './request-id.js';
