/**
 * The wire contract: socket.io event names and their payload types, shared by
 * the server and the client library. This module has no dependencies.
 *
 * @module
 */
import type { ErrorCode } from './errors.js';

/** A link name. 1 to 256 characters; any characters. */
export type ShareName = string;
/** Identifies one joiner within one share. */
export type JoinerUID = string;
/** Whatever socket.io carries: string, JSON value, binary. Opaque to the server. */
export type SignalMessage = unknown;

/** The longest share name accepted. */
export const MAX_NAME_LENGTH = 256;
/** The longest joinerUID accepted. */
export const MAX_UID_LENGTH = 256;

export interface ShareOptions {
  /** Requested lifetime in milliseconds, capped by the server's maximum. */
  ttl?: number;
  /** How many joiners this share admits in total; unlimited when absent. */
  maxJoins?: number;
}

export interface ErrorBody {
  code: ErrorCode;
  message: string;
}

/** What an ack receives when a request failed. */
export interface AckFailure {
  ok: false;
  error: ErrorBody;
}

export interface ShareGranted {
  ok: true;
  name: ShareName;
  /** Expiry as milliseconds since the Unix epoch. */
  expiresAt: number;
  /** The lifetime granted, in milliseconds, after capping. */
  ttl: number;
}
export interface UnshareDone {
  ok: true;
  /** The names this socket stopped sharing. */
  names: ShareName[];
}
export interface LaunchDone {
  ok: true;
  joinerUID: JoinerUID;
}
export interface AnswerDone {
  ok: true;
}

export type AckResult<T> = T | AckFailure;

/** Payload of the `signalingError` event. */
export interface SignalingErrorBody extends ErrorBody {
  /** The client event that caused it (`share`, `unshare`, `launch`, `answer`). */
  event: ClientEventName;
  /** The share concerned, when known. */
  name?: ShareName;
  /** The joiner concerned, when known. */
  joinerUID?: JoinerUID;
}

export type ClientEventName = 'share' | 'unshare' | 'launch' | 'answer';

/** Events the server sends to clients. */
export interface ServerToClientEvents {
  /** To a sharer: a joiner's message (its offer, then trickled candidates). */
  launchResponse: (joinerUID: JoinerUID, message: SignalMessage) => void;
  /** To a joiner: its sharer's message (its answer, then trickled candidates). */
  answerResponse: (message: SignalMessage) => void;
  /** To a sharer: the lifetime of this share ran out. */
  shareExpired: (name: ShareName) => void;
  /** To the sender of a failed request, or to a joiner whose sharer left. */
  signalingError: (error: SignalingErrorBody) => void;
}

type Ack<T> = (result: AckResult<T>) => void;

/**
 * Events clients send. Each accepts an optional trailing ack callback;
 * `launch` and `answer` also accept their older, shorter argument forms.
 */
export interface ClientToServerEvents {
  share: (name?: ShareName | null, options?: ShareOptions, ack?: Ack<ShareGranted>) => void;
  unshare: (name?: ShareName | null, ack?: Ack<UnshareDone>) => void;
  /** launch(name, joinerUID, message, ack?) or, older, launch(name, message, ack?). */
  launch: (
    ...args:
      | [name: ShareName, joinerUID: JoinerUID, message: SignalMessage, ack?: Ack<LaunchDone>]
      | [name: ShareName, message: SignalMessage, ack?: Ack<LaunchDone>]
  ) => void;
  /** answer(name, joinerUID, message, ack?) or, older, answer(joinerUID, message, ack?). */
  answer: (
    ...args:
      | [name: ShareName, joinerUID: JoinerUID, message: SignalMessage, ack?: Ack<AnswerDone>]
      | [joinerUID: JoinerUID, message: SignalMessage, ack?: Ack<AnswerDone>]
  ) => void;
}
