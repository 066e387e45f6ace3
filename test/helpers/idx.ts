/** The tests' IDX encoder (MNIST's format, written out from its spec): magic 0 0 type rank, big-endian dims, the body. */
export function encodeIdx(type: number, shape: number[], body: Uint8Array): Uint8Array {
  const head = new Uint8Array(4 + 4 * shape.length), dv = new DataView(head.buffer);
  head[2] = type; head[3] = shape.length;
  shape.forEach((d, i) => dv.setUint32(4 + 4 * i, d, false));
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}
