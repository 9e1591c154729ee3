import { ERROR_CODES, type ErrorCode } from '../protocol/errors.js';

/** A request that failed for a reason the protocol names. */
export class SignalingError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string = ERROR_CODES[code]) {
    super(message);
    this.name = 'SignalingError';
    this.code = code;
  }
}
