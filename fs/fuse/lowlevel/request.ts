/**
 * One request as read from /dev/fuse: the in header decoded, the body (the
 * op's arguments) as a view of the message, and helpers for the
 * NUL-terminated names that follow fixed arguments.
 */
import { decodeFields, FormatError, type Decoded, type Layout } from '../../format/layout';
import { FsError } from '../../errors';
import { FUSE_IN_HEADER_SIZE, fuse_in_header, sizeOf } from './structs';

export interface Request {
  opcode: number;
  unique: number;
  nodeid: number;
  uid: number;
  gid: number;
  pid: number;
  /** The arguments after the header, request extensions cut off. */
  body: Buffer;
}

export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

/** Decodes the header; throws ProtocolError when the message cannot be a request (then nothing can be replied). */
export function parseRequest(msg: Buffer): Request {
  if (msg.length < FUSE_IN_HEADER_SIZE) throw new ProtocolError(`a ${msg.length}-byte message is shorter than fuse_in_header`);
  const h = decodeFields(fuse_in_header, msg, 0, 'fuse_in_header');
  if (h.len !== msg.length) throw new ProtocolError(`fuse_in_header.len ${h.len} but ${msg.length} bytes were read (opcode ${h.opcode})`);
  const end = h.len - h.total_extlen * 8;
  if (end < FUSE_IN_HEADER_SIZE) throw new ProtocolError(`request extensions (${h.total_extlen * 8} bytes) exceed the message`);
  return { opcode: h.opcode, unique: h.unique, nodeid: h.nodeid, uid: h.uid, gid: h.gid, pid: h.pid, body: msg.subarray(FUSE_IN_HEADER_SIZE, end) };
}

/** The fixed arguments of a request; EINVAL when the body is too short, EOVERFLOW for a 64-bit value past 2^53. */
export function args<L extends Layout>(layout: L, req: Request, what: string): Decoded<L> {
  if (req.body.length < sizeOf(layout)) throw new FsError('EINVAL', `${what}: ${req.body.length}-byte body, expected ${sizeOf(layout)}`);
  try {
    return decodeFields(layout, req.body, 0, what);
  } catch (err) {
    if (err instanceof FormatError) throw new FsError('EOVERFLOW', err.message);
    throw err;
  }
}

/** The NUL-terminated name at `at` in the body, and where the next one starts. */
export function nameAt(req: Request, at: number): { name: Buffer; next: number } {
  const nul = req.body.indexOf(0, at);
  if (nul < 0) throw new FsError('EINVAL', 'a name in the request is not NUL-terminated');
  return { name: req.body.subarray(at, nul), next: nul + 1 };
}
