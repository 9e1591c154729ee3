/**
 * Delivery within one process: the message is handed to the receiving core
 * at once, in the sender's call, which keeps order for free.
 * @module
 */
import type { Delivery, DeliveryHandler } from '../core/delivery.js';
import type { DeliveryMessage, SocketId } from '../core/types.js';

export class LocalDelivery implements Delivery {
  #handler: DeliveryHandler | undefined;

  send(target: SocketId, message: DeliveryMessage): void {
    this.#handler?.(target, message);
  }

  onMessage(handler: DeliveryHandler): void {
    this.#handler = handler;
  }

  async close(): Promise<void> {}
}
