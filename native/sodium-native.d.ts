/** The subset of sodium-native that native/sodium.ts uses (the package ships no types). */
declare module 'sodium-native' {
  export const crypto_pwhash_STRBYTES: number;
  export function crypto_pwhash_str(out: Buffer, password: Buffer, opslimit: number, memlimit: number): void;
  export function crypto_pwhash_str_verify(str: Buffer, password: Buffer): boolean;
  export function crypto_pwhash_str_needs_rehash(str: Buffer, opslimit: number, memlimit: number): boolean;
  export const crypto_secretbox_KEYBYTES: number;
  export const crypto_secretbox_NONCEBYTES: number;
  export const crypto_secretbox_MACBYTES: number;
  export function crypto_secretbox_easy(c: Buffer, m: Buffer, n: Buffer, k: Buffer): void;
  export function crypto_secretbox_open_easy(m: Buffer, c: Buffer, n: Buffer, k: Buffer): boolean;
  export function randombytes_buf(buf: Buffer): void;
}
