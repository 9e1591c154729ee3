/**
 * The one error type the client rejects with. It carries either the server's
 * stable code (see src/protocol/errors.ts) or one of a few client-side codes.
 * @module
 */
import { ERROR_CODES, isErrorCode, type ClientEventName, type ErrorCode } from '../protocol/index.js';

/** Conditions the client detects itself, never sent by the server. */
export const CLIENT_ERROR_CODES = {
  timeout: 'No answer came within the time allowed.',
  disconnected: 'The connection to the signaling server dropped before the request was answered.',
  closed: 'The client was closed.',
  'peer-failed': 'The WebRTC connection to the other peer failed.',
  'no-rtc': 'No RTCPeerConnection implementation is available; pass one in the options.',
} as const satisfies Record<string, string>;

export type ClientErrorCode = keyof typeof CLIENT_ERROR_CODES;

/**
 * A failed request or connection attempt.
 *
 * `code` is one of the server's stable codes (`no-sharer`, `share-full`, ...)
 * when `fromServer` is true, otherwise one of {@link CLIENT_ERROR_CODES}.
 * Cancellation through an AbortSignal rejects with the signal's reason
 * instead, as `fetch` does.
 */
export class SignalingClientError extends Error {
  override readonly name = 'SignalingClientError';
  readonly code: ErrorCode | ClientErrorCode;
  /** The request that failed, when the failure belongs to one. */
  readonly event: ClientEventName | undefined;
  readonly fromServer: boolean;

  constructor(code: ErrorCode | ClientErrorCode, message?: string, event?: ClientEventName, options?: { cause?: unknown }) {
    super(message ?? (isErrorCode(code) ? ERROR_CODES[code] : CLIENT_ERROR_CODES[code]), options);
    this.code = code;
    this.event = event;
    this.fromServer = isErrorCode(code);
  }
}

/** True for errors that carry this server or client `code`. */
export function hasCode(error: unknown, code: ErrorCode | ClientErrorCode): error is SignalingClientError {
  return error instanceof SignalingClientError && error.code === code;
}
