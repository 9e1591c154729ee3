/**
 * What one socket may share, decided once when it connects (from a token in
 * its handshake, by src/server/share-auth.ts) and enforced by the core at
 * every `share`, which alone turns a refusal into the `unauthorized` code.
 * A socket attached without a policy may share anything.
 * @module
 */
import type { ShareName } from './types.js';

export type SharePolicy =
  | {
      allowed: false;
      /** Why, for the client: never the token itself. */
      reason: string;
    }
  | {
      allowed: true;
      /** Every name shared must start with this; minted names get it prepended. */
      namePrefix?: string | undefined;
      /** Longest lifetime granted under this policy, in ms. */
      maxTtl?: number | undefined;
      /** Milliseconds since the epoch after which the policy allows nothing. */
      validUntil?: number | undefined;
    };

/** A policy that admits nothing: the default once share authorization is configured. */
export const denyAll = (reason: string): SharePolicy => ({ allowed: false, reason });

/**
 * Why `policy` refuses sharing `requested` at `now`, or undefined when it
 * allows it. A missing name is always allowed: it is minted under the prefix.
 */
export function shareRefusal(policy: SharePolicy, requested: ShareName | undefined, now: number): string | undefined {
  if (!policy.allowed) return policy.reason;
  if (policy.validUntil !== undefined && now >= policy.validUntil) return 'the share token has expired';
  if (requested !== undefined && policy.namePrefix !== undefined && !requested.startsWith(policy.namePrefix)) {
    return 'the share token does not allow this name';
  }
  return undefined;
}
