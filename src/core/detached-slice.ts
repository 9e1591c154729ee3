/**
 * Slices that do not keep their parent string alive.
 * @module
 */

/**
 * text[start, end) as a string of its own. A plain slice of 13 characters
 * or more is, in V8, a view that keeps all of `text` alive; when `text` is
 * a packet or a batch of frames (KB to tens of KB) and the slice is an id,
 * a name or a uid that a route table keeps for the route's life, every
 * route would pin what it was read from. Slicing a concatenation flattens
 * it first, so the result is a view of a copy the size of the field.
 */
export const detachedSlice = (text: string, start: number, end: number): string =>
  end - start < 13 ? text.slice(start, end) : (' ' + text.slice(start, end)).slice(1);
