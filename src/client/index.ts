/**
 * The sigserve client, for browsers and Node 20+.
 *
 * - {@link SignalingClient}: the socket.io protocol, typed, with Promises.
 * - {@link share} / {@link join}: open WebRTC data channels through a link.
 * - {@link shareMembership} / {@link joinMembership} / {@link WebRtcMembership}:
 *   the original README's `membership` interface.
 *
 * Imports nothing from the server: only src/protocol and socket.io-client.
 * @module
 */
export { SignalingClient } from './signaling-client.js';
export type { ActiveShare, RequestOptions, SignalingClientEvents, SignalingClientOptions, SignalingSocket } from './signaling-client.js';
export { SignalingClientError, CLIENT_ERROR_CODES, hasCode, type ClientErrorCode } from './errors.js';
export { share, Sharer, type ShareLinkOptions, type SharedPeer, type SharerEvents } from './share.js';
export { join, type JoinOptions, type JoinedPeer } from './join.js';
export { readSignal, type PeerLink, type PeerOptions, type RTCPeerConnectionClass, type Signal } from './peer-negotiation.js';
export {
  joinMembership,
  shareMembership,
  WebRtcMembership,
  type Membership,
  type MembershipJoin,
  type MembershipJoinOptions,
  type MembershipShare,
  type MembershipShareOptions,
  type WebRtcMembershipEvents,
  type WebRtcMembershipOptions,
} from './membership.js';
export { Emitter } from './emitter.js';
export * from '../protocol/index.js';
