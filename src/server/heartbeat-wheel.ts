/**
 * One timer for the heartbeats of every direct websocket connection.
 *
 * engine.io arms a timer per connection and re-arms it on every ping and
 * pong: with 20,000 idle clients that is 20,000 timers in the heap and a
 * timer reset per heartbeat. Here connections sit in the slots of a wheel
 * that turns one slot per tick; each connection is visited once per turn,
 * that is once per ping interval, and the visit both checks the previous
 * ping's pong and sends the next ping.
 * @module
 */

export interface Beating {
  /** Its slot, kept by the wheel; -1 when in none. */
  slot: number;
  beat(): void;
}

export class HeartbeatWheel<T extends Beating> {
  readonly #slots: Set<T>[];
  /** The slot the next tick visits. */
  #cursor = 0;
  readonly #timer: NodeJS.Timeout;

  /** Visits every member once per `periodMs`, in ticks of `tickMs`. */
  constructor(periodMs: number, tickMs = 1000) {
    const count = Math.max(2, Math.round(periodMs / tickMs));
    this.#slots = Array.from({ length: count }, () => new Set<T>());
    this.#timer = setInterval(() => this.#tick(), periodMs / count);
    this.#timer.unref();
  }

  /** Adds `member`, first visited one full turn (less at most a tick) from now. */
  add(member: T): void {
    member.slot = (this.#cursor + this.#slots.length - 1) % this.#slots.length;
    this.#slots[member.slot]!.add(member);
  }

  remove(member: T): void {
    if (member.slot < 0) return;
    this.#slots[member.slot]!.delete(member);
    member.slot = -1;
  }

  /** Every member, in no particular order. */
  *members(): IterableIterator<T> {
    for (const slot of this.#slots) yield* slot;
  }

  get size(): number {
    let size = 0;
    for (const slot of this.#slots) size += slot.size;
    return size;
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #tick(): void {
    const slot = this.#slots[this.#cursor]!;
    this.#cursor = (this.#cursor + 1) % this.#slots.length;
    // A visit may close its member, which then leaves the set: deleting
    // during iteration is safe for a Set.
    for (const member of slot) member.beat();
  }
}
