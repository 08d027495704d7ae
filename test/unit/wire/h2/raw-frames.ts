/**
 * Hand-made HTTP/2 frames (RFC 9113 §4.1) for the adversarial peers of
 * adversarial.test.ts (a hostile client) and adversarial-client.test.ts (a
 * hostile Warpgate): written byte by byte, on purpose not with the codec
 * under test.
 */
export const T = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST: 3, SETTINGS: 4, PUSH_PROMISE: 5, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 };
export const F = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 };
export const E = { NO_ERROR: 0, PROTOCOL_ERROR: 1, FLOW_CONTROL_ERROR: 3, STREAM_CLOSED: 5, FRAME_SIZE_ERROR: 6, REFUSED_STREAM: 7, COMPRESSION_ERROR: 9, ENHANCE_YOUR_CALM: 11 };

export interface Frame {
  type: number;
  flags: number;
  sid: number;
  payload: Buffer;
}

export function frame(type: number, flags: number, sid: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(sid, 5);
  return Buffer.concat([h, payload]);
}

export const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

/** A SETTINGS frame with the given (id, value) pairs. */
export const settings = (pairs: Array<[number, number]> = []): Buffer => {
  const b = Buffer.alloc(pairs.length * 6);
  pairs.forEach(([id, v], i) => {
    b.writeUInt16BE(id, i * 6);
    b.writeUInt32BE(v >>> 0, i * 6 + 2);
  });
  return frame(T.SETTINGS, 0, 0, b);
};
