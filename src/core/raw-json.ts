/**
 * A relayed message kept as the JSON text it arrived in. The server relays
 * messages without looking into them, so it can forward that text as it is
 * instead of serializing the value again (src/server/relay-parser.ts), in
 * this process and between the nodes of a cluster.
 * @module
 */

/**
 * A JSON value together with the JSON text it was parsed from. Anything that
 * serializes it (JSON.stringify) gets the value; the relay encoder uses the
 * text.
 */
export class RawJson {
  #value: unknown;
  #parsed: boolean;

  /** `value` is parsed from `text` when first asked for, if not given. */
  constructor(
    readonly text: string,
    ...value: [] | [unknown]
  ) {
    this.#parsed = value.length === 1;
    this.#value = value[0];
  }

  get value(): unknown {
    if (!this.#parsed) {
      this.#value = JSON.parse(this.text);
      this.#parsed = true;
    }
    return this.#value;
  }

  toJSON(): unknown {
    return this.value;
  }
}

