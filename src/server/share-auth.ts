/**
 * Optional share authorization: when configured, a socket may `share` only
 * if its handshake carried a JWT that an application backend signed
 * (`auth: { token }`), verified here with jose against a shared secret
 * (HS256/384/512) or a public key (RS*, PS*, ES*, EdDSA). Joiners need no
 * token. Claims narrow what the token allows:
 *
 * - `exp` (required): after it the socket may share nothing more;
 * - `share_prefix`: every name shared must start with it; minted names get it;
 * - `share_ttl_max`: longest share lifetime granted, in ms.
 *
 * The result is a SharePolicy that the core enforces; the core alone turns a
 * refusal into the `unauthorized` code. Tokens are never logged.
 * @module
 */
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { errors, jwtVerify, type JWTPayload } from 'jose';
import { denyAll, type SharePolicy } from '../core/share-policy.js';
import { MAX_NAME_LENGTH } from '../protocol/events.js';

export interface ShareAuthOptions {
  /** Shared HMAC secret, at least 32 characters. Exactly one of `secret` and `publicKey`. */
  secret?: string | undefined;
  /** PEM public key (SPKI) of the backend that signs the tokens. */
  publicKey?: string | undefined;
  /** When set, tokens must carry this `iss`. */
  issuer?: string | undefined;
  /** When set, tokens must carry this `aud`. */
  audience?: string | undefined;
  /**
   * Clock skew tolerated on `exp` and `nbf`, in seconds.
   * @default 5
   */
  clockTolerance?: number;
}

/** Tokens longer than this are refused unread. */
export const MAX_TOKEN_LENGTH = 8192;
/** Room left in a name for the 24 characters of a minted suffix. */
export const MAX_PREFIX_LENGTH = MAX_NAME_LENGTH - 24;
/** The shortest HMAC secret accepted: 256 bits of text. */
export const MIN_SECRET_LENGTH = 32;

const NO_TOKEN = 'sharing on this server needs a share token: pass it as auth.token in the handshake';

/** The algorithms a key may verify: one key type, never a mix (no HS/RS confusion). */
function algorithmsFor(key: KeyObject): string[] {
  if (key.type === 'secret') return ['HS256', 'HS384', 'HS512'];
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512'];
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      const alg = curve === 'prime256v1' ? 'ES256' : curve === 'secp384r1' ? 'ES384' : curve === 'secp521r1' ? 'ES512' : undefined;
      if (alg) return [alg];
      throw new Error(`unsupported EC curve ${curve ?? '(unknown)'}`);
    }
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
    default:
      throw new Error(`unsupported key type ${key.asymmetricKeyType ?? '(unknown)'}`);
  }
}

function reasonFor(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'the share token has expired';
  if (error instanceof errors.JWTClaimValidationFailed) return `the share token's ${error.claim} claim is not accepted`;
  if (error instanceof errors.JWSSignatureVerificationFailed) return "the share token's signature is not valid";
  if (error instanceof errors.JOSEAlgNotAllowed) return "the share token's algorithm is not accepted";
  return 'the share token is malformed';
}

/** What a client sent on connecting: socket.io's `handshake.auth` and `handshake.query`. */
export interface Handshake {
  auth: unknown;
  query: unknown;
}

/** The token a handshake carries: `auth.token`, or `?token=` for socket.io 1.x/2.x clients, which have no `auth`. */
export function handshakeToken(handshake: Handshake): unknown {
  const auth = handshake.auth;
  if (typeof auth === 'object' && auth !== null && Object.hasOwn(auth, 'token')) return (auth as { token: unknown }).token;
  const query = handshake.query;
  if (typeof query === 'object' && query !== null && Object.hasOwn(query, 'token')) return (query as { token: unknown }).token;
  return undefined;
}

export class ShareAuth {
  readonly #key: KeyObject;
  readonly #algorithms: string[];
  readonly #options: ShareAuthOptions;

  /** Throws when the key is missing, doubled, too short or unreadable. */
  constructor(options: ShareAuthOptions) {
    if (Boolean(options.secret) === Boolean(options.publicKey)) throw new Error('give exactly one of a secret and a public key');
    if (options.secret !== undefined && options.secret !== '') {
      if (options.secret.length < MIN_SECRET_LENGTH) throw new Error(`the secret must be at least ${MIN_SECRET_LENGTH} characters`);
      this.#key = createSecretKey(Buffer.from(options.secret, 'utf8'));
    } else {
      this.#key = createPublicKey(options.publicKey!);
    }
    this.#algorithms = algorithmsFor(this.#key);
    this.#options = options;
  }

  /** What a socket that presented `token` may share. Never throws. */
  async policy(token: unknown): Promise<SharePolicy> {
    if (token === undefined || token === null || token === '') return denyAll(NO_TOKEN);
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return denyAll('the share token is malformed');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.#key, {
        algorithms: this.#algorithms,
        issuer: this.#options.issuer || undefined,
        audience: this.#options.audience || undefined,
        requiredClaims: ['exp'],
        clockTolerance: this.#options.clockTolerance ?? 5,
      }));
    } catch (error) {
      return denyAll(reasonFor(error));
    }
    const prefix = payload['share_prefix'];
    const maxTtl = payload['share_ttl_max'];
    if (prefix !== undefined && (typeof prefix !== 'string' || prefix.length > MAX_PREFIX_LENGTH)) {
      return denyAll("the share token's share_prefix claim is not accepted");
    }
    if (maxTtl !== undefined && !(typeof maxTtl === 'number' && Number.isSafeInteger(maxTtl) && maxTtl > 0)) {
      return denyAll("the share token's share_ttl_max claim is not accepted");
    }
    return {
      allowed: true,
      namePrefix: prefix === '' ? undefined : prefix,
      maxTtl,
      validUntil: payload.exp! * 1000 + (this.#options.clockTolerance ?? 5) * 1000,
    };
  }
}
