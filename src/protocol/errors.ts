/**
 * The one list of error codes the server can answer with.
 *
 * Codes are part of the wire contract: they are never renamed or reused.
 * Messages may change. docs/protocol.md lists the same codes and a test
 * (test/docs.test.ts) fails when the two drift apart.
 *
 * @module
 */

export const ERROR_CODES = {
  'bad-request': 'The event had missing or ill-typed arguments.',
  'too-large': 'The message exceeded the maximum message size.',
  'no-sharer': 'Nobody currently shares this name.',
  'uid-taken': 'Another socket already uses this joinerUID in this share.',
  'not-sharer': 'Only the sharer the joiner was routed to may answer it.',
  'unknown-joiner': 'No joiner with this joinerUID is routed to this socket.',
  'share-full': 'Every sharer of this name has admitted its maxJoins joiners.',
  'sharer-gone': 'The sharer this joiner was routed to has disconnected.',
  'rate-limited': 'Too many events in too short a time; slow down.',
  unauthorized: 'Sharing needs a valid share token that allows this name.',
  internal: 'The server failed to handle the request; it is safe to retry.',
} as const satisfies Record<string, string>;

export type ErrorCode = keyof typeof ERROR_CODES;

export const errorCodes = Object.keys(ERROR_CODES) as ErrorCode[];

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}
