/**
 * A small parser of `text/event-stream` (WHATWG HTML, "Server-sent events", §9.2.6): fields
 * `id`, `event` and `data` (several data lines join with a newline), comment lines start with a
 * colon, and a blank line ends an event. Bounded: one event may not exceed MAX_EVENT_CHARS.
 */
import { fbError } from '@fetchback/shared';

export interface SseEvent {
  readonly id: string | undefined;
  readonly event: string;
  readonly data: string;
}

/** Largest event accepted, in characters: a bound on what a server can make us buffer. */
export const MAX_EVENT_CHARS = 1 << 20;

export class SseParser {
  private buffer = '';
  private id: string | undefined;
  private event = '';
  private data: string[] = [];

  /**
   * Feeds decoded text; returns the events it completed.
   *
   * @throws FetchbackError `FB_ERR_BODY_TOO_LARGE` when an event exceeds MAX_EVENT_CHARS.
   */
  push(text: string): SseEvent[] {
    this.buffer += text;
    const out: SseEvent[] = [];
    let newline: number;
    while ((newline = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buffer.slice(0, newline);
      const width = this.buffer.startsWith('\r\n', newline) ? 2 : 1;
      this.buffer = this.buffer.slice(newline + width);
      const event = this.line(line);
      if (event !== undefined) out.push(event);
    }
    if (this.buffer.length > MAX_EVENT_CHARS) {
      throw fbError('FB_ERR_BODY_TOO_LARGE', 'server-sent event over the size limit');
    }
    return out;
  }

  private line(line: string): SseEvent | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'id') this.id = value;
    else if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    return undefined;
  }

  private dispatch(): SseEvent | undefined {
    if (this.data.length === 0) {
      this.event = '';
      return undefined;
    }
    const event = { id: this.id, event: this.event || 'message', data: this.data.join('\n') };
    this.event = '';
    this.data = [];
    return event;
  }
}
