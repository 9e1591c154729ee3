/**
 * Time as the core sees it, injected so tests can move it by hand.
 * @module
 */

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the Unix epoch, with sub-millisecond precision. */
  now(): number;
  /** Runs `fn` after `ms`; the timer does not keep the process alive. */
  schedule(ms: number, fn: () => void): TimerHandle;
}

// setTimeout overflows past 2^31-1 ms and fires at once; longer waits re-arm.
const MAX_TIMEOUT = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  schedule(ms, fn) {
    let timer: NodeJS.Timeout;
    const due = Date.now() + ms;
    const arm = (wait: number): void => {
      timer = setTimeout(() => {
        const left = due - Date.now();
        if (left > 0) arm(left);
        else fn();
      }, Math.min(wait, MAX_TIMEOUT));
      timer.unref();
    };
    arm(ms);
    return { cancel: () => clearTimeout(timer) };
  },
};
