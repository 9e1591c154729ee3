/**
 * Small helpers shared by the client modules: ids, deadlines, cancellation.
 * @module
 */
import { SignalingClientError } from './errors.js';

/**
 * 128 random bits as hex. crypto.getRandomValues, unlike randomUUID, also
 * exists on pages served over plain http (a phone opening a LAN address).
 */
export function randomId(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  let id = '';
  for (const byte of bytes) id += byte.toString(16).padStart(2, '0');
  return id;
}

/** The reason an aborted signal rejects with, as fetch does. */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/**
 * Runs `work` with a deadline and an optional AbortSignal: the returned
 * promise rejects with a `timeout` SignalingClientError after `ms`, or with
 * the signal's reason, whichever comes first. `work` receives a signal that
 * aborts in both cases so it can release what it holds.
 */
export function withDeadline<T>(
  ms: number,
  signal: AbortSignal | undefined,
  what: string,
  work: (inner: AbortSignal) => Promise<T>,
): Promise<T> {
  const inner = new AbortController();
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const finish = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      return true;
    };
    const onAbort = (): void => {
      if (!finish()) return;
      const reason = abortReason(signal!);
      inner.abort(reason);
      reject(reason);
    };
    const timer = setTimeout(() => {
      if (!finish()) return;
      const error = new SignalingClientError('timeout', `${what} took longer than ${ms} ms`);
      inner.abort(error);
      reject(error);
    }, ms);
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    work(inner.signal).then(
      (value) => {
        if (finish()) resolve(value);
      },
      (error: unknown) => {
        if (!finish()) return;
        inner.abort(error);
        reject(error);
      },
    );
  });
}

/** Resolves after `ms`, or rejects early with the signal's reason. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
