/** The subset of sodium-native that native/sodium.ts uses (the package ships no types). */
declare module 'sodium-native' {
  export const crypto_pwhash_STRBYTES: number;
  export function crypto_pwhash_str(out: Buffer, password: Buffer, opslimit: number, memlimit: number): void;
  export function crypto_pwhash_str_verify(str: Buffer, password: Buffer): boolean;
  export function crypto_pwhash_str_needs_rehash(str: Buffer, opslimit: number, memlimit: number): boolean;
}
