/**
 * Realistic signaling payloads: an SDP offer of about 1.6 KB, an answer of
 * about 1.2 KB and ICE candidate lines, shaped like what Chromium produces for
 * an audio + data-channel session. Every pair gets its own session ids, ICE
 * credentials and fingerprint, so a message delivered to the wrong pair is
 * caught by the generator's payload check. Addresses are from documentation
 * ranges (RFC 5737): nothing here points anywhere real.
 * @module
 */

/** What one pair exchanges in every handshake. */
export interface PairPayloads {
  offer: string;
  answer: string;
  /** Candidates the joiner trickles after its offer. */
  joinerCandidates: string[];
  /** Candidates the sharer trickles after its answer. */
  sharerCandidates: string[];
}

/** Trickle ICE: candidates sent each way after the offer / answer. */
export const TRICKLE_CANDIDATES = 8;

// A small deterministic generator: the same pair index always gives the same payloads.
function rng(seed: number): () => number {
  let s = (seed * 2654435761) >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

const ICE_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function token(next: () => number, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ICE_CHARS[next() % 64];
  return out;
}

function fingerprint(next: () => number): string {
  const bytes: string[] = [];
  for (let i = 0; i < 32; i++) bytes.push((next() % 256).toString(16).toUpperCase().padStart(2, '0'));
  return bytes.join(':');
}

function session(next: () => number, setup: 'actpass' | 'active', full: boolean): string[] {
  const ufrag = token(next, 4);
  const pwd = token(next, 24);
  const fp = fingerprint(next);
  const sessionId = `${next()}${next() % 100000}`;
  const audio = [
    `m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126`,
    'c=IN IP4 0.0.0.0',
    'a=rtcp:9 IN IP4 0.0.0.0',
    `a=ice-ufrag:${ufrag}`,
    `a=ice-pwd:${pwd}`,
    'a=ice-options:trickle',
    `a=fingerprint:sha-256 ${fp}`,
    `a=setup:${setup}`,
    'a=mid:0',
    'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level',
    'a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
    'a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
    'a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid',
    'a=sendrecv',
    `a=msid:${token(next, 8)}-${token(next, 4)} ${token(next, 8)}-${token(next, 4)}`,
    'a=rtcp-mux',
    'a=rtpmap:111 opus/48000/2',
    'a=rtcp-fb:111 transport-cc',
    'a=fmtp:111 minptime=10;useinbandfec=1',
    'a=rtpmap:63 red/48000/2',
    'a=fmtp:63 111/111',
    'a=rtpmap:9 G722/8000',
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:8 PCMA/8000',
    'a=rtpmap:13 CN/8000',
    'a=rtpmap:110 telephone-event/48000',
    'a=rtpmap:126 telephone-event/8000',
    `a=ssrc:${next()} cname:${token(next, 16)}`,
  ];
  // Lines only an offer carries: header extensions and stream ids the answer declines.
  const offerOnly = [
    'a=extmap:5 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id',
    'a=extmap:6 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id',
    `a=ssrc:${next()} msid:${token(next, 8)}-${token(next, 4)}-${token(next, 4)} ${token(next, 8)}-${token(next, 4)}-${token(next, 12)}`,
  ];
  const data = [
    'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
    'c=IN IP4 0.0.0.0',
    `a=ice-ufrag:${ufrag}`,
    `a=ice-pwd:${pwd}`,
    'a=ice-options:trickle',
    `a=fingerprint:sha-256 ${fp}`,
    `a=setup:${setup}`,
    'a=mid:1',
    'a=sctp-port:5000',
    'a=max-message-size:262144',
  ];
  return [
    'v=0',
    `o=- ${sessionId} 2 IN IP4 127.0.0.1`,
    's=-',
    't=0 0',
    'a=group:BUNDLE 0 1',
    'a=extmap-allow-mixed',
    'a=msid-semantic: WMS',
    // The answer drops the offer's longer codec list, as browsers do.
    ...(full ? [...audio, ...offerOnly] : audio.filter((line) => !/^a=(rtpmap|fmtp|rtcp-fb):(63|9|0|8|13|126) /.test(line))),
    ...data,
  ];
}

function candidate(next: () => number, index: number, component: number): string {
  const host = `198.51.100.${1 + (next() % 250)}`;
  const port = 40000 + (next() % 20000);
  const foundation = next();
  if (index % 2 === 0) {
    return `candidate:${foundation} ${component} udp ${2122260223 - index} ${host} ${port} typ host generation 0 ufrag ${token(next, 4)} network-id 1 network-cost 10`;
  }
  const mapped = `203.0.113.${1 + (next() % 250)}`;
  return `candidate:${foundation} ${component} udp ${1686052607 - index} ${mapped} ${port} typ srflx raddr ${host} rport ${port} generation 0 ufrag ${token(next, 4)} network-id 1 network-cost 10`;
}

/** The payloads of pair `index`; deterministic, distinct for every index. */
export function pairPayloads(index: number): PairPayloads {
  const next = rng(index + 1);
  const offer = `${session(next, 'actpass', true).join('\r\n')}\r\n`;
  const answer = `${session(next, 'active', false).join('\r\n')}\r\n`;
  const joinerCandidates = Array.from({ length: TRICKLE_CANDIDATES }, (_, i) => candidate(next, i, 1));
  const sharerCandidates = Array.from({ length: TRICKLE_CANDIDATES }, (_, i) => candidate(next, i, 1));
  return { offer, answer, joinerCandidates, sharerCandidates };
}
