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
  /**
   * Where the wheel keeps it, kept by the wheel: slot * 2^20 + index in the
   * slot (one number per member rather than two); -1 when in none.
   */
  slot: number;
  beat(): void;
}

/** Members one slot may hold: 2^20, far above what one process's descriptors allow. */
const SLOT_SPAN = 1 << 20;

// Slots are arrays with swap-remove: a member costs one array element
// rather than a Set entry.
export class HeartbeatWheel<T extends Beating> {
  readonly #slots: T[][];
  /** The slot the next tick visits. */
  #cursor = 0;
  readonly #timer: NodeJS.Timeout;

  /** Visits every member once per `periodMs`, in ticks of `tickMs`. */
  constructor(periodMs: number, tickMs = 1000) {
    const count = Math.max(2, Math.round(periodMs / tickMs));
    this.#slots = Array.from({ length: count }, () => []);
    this.#timer = setInterval(() => this.#tick(), periodMs / count);
    this.#timer.unref();
  }

  /** Adds `member`, first visited one full turn (less at most a tick) from now. */
  add(member: T): void {
    const index = (this.#cursor + this.#slots.length - 1) % this.#slots.length;
    const slot = this.#slots[index]!;
    if (slot.length >= SLOT_SPAN) throw new Error('heartbeat wheel slot full');
    member.slot = index * SLOT_SPAN + slot.length;
    slot.push(member);
  }

  remove(member: T): void {
    if (member.slot < 0) return;
    const slot = this.#slots[Math.floor(member.slot / SLOT_SPAN)]!;
    const index = member.slot % SLOT_SPAN;
    const last = slot.pop()!;
    if (last !== member) {
      slot[index] = last;
      last.slot = member.slot;
    }
    member.slot = -1;
  }

  /** Every member, in no particular order. */
  members(): T[] {
    return this.#slots.flat();
  }

  get size(): number {
    let size = 0;
    for (const slot of this.#slots) size += slot.length;
    return size;
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #tick(): void {
    const slot = this.#slots[this.#cursor]!;
    this.#cursor = (this.#cursor + 1) % this.#slots.length;
    // A visit may close its member, which then leaves the slot: the last
    // member moves into its place, so walk from the end, where moves come from.
    for (let i = slot.length - 1; i >= 0; i--) {
      if (i < slot.length) slot[i]!.beat();
    }
  }
}
