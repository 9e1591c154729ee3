/**
 * Delivery carries a DeliveryMessage to the core that holds the target
 * socket, on this node or another. Messages from one sender to one target
 * arrive in the order they were sent. A message to a socket of this very
 * node is handed to the handler within `send`, so nothing between two
 * sockets of one node is ever in flight: the core relies on that to hand
 * over between them itself. `send` never throws.
 * @module
 */
import type { DeliveryMessage, SocketId } from './types.js';

export type DeliveryHandler = (target: SocketId, message: DeliveryMessage) => void;

export interface Delivery {
  /** Sends without waiting; a message to a socket nobody holds is dropped. */
  send(target: SocketId, message: DeliveryMessage): void;
  /**
   * False when a message to `target` would certainly be lost right now (the
   * link to its node is down), so a client request can fail instead. Absent
   * means always true.
   */
  canSend?(target: SocketId): boolean;
  /**
   * Hands over at once whatever `send` let wait to be written with other
   * messages (see RedisDelivery), before a client is told its message was
   * relayed. Absent when `send` never lets anything wait.
   */
  flush?(): void;
  /** Registers the one receiver of messages addressed to this node's sockets. */
  onMessage(handler: DeliveryHandler): void;
  close(): Promise<void>;
}
