// The bytes a remote shell has sent and keel has not consumed yet. sshd passes a probe's output
// on in many small packets (a 400-resource probe on one host is hundreds); appending each with
// Buffer.concat copied everything held so far every time, quadratic in the output. This one
// grows its storage by doubling and drops consumed bytes by moving a start offset, so each
// byte is copied a bounded number of times.
export class ByteBuffer {
  private store: Buffer;
  private start = 0;
  private end = 0;

  constructor(private readonly initial = 4096) {
    this.store = Buffer.allocUnsafe(initial);
  }

  get length(): number {
    return this.end - this.start;
  }

  append(d: Buffer): void {
    if (this.end + d.length > this.store.length) this.makeRoom(d.length);
    d.copy(this.store, this.end);
    this.end += d.length;
  }

  /** The held bytes. A view: valid until the next append or consume. */
  view(): Buffer {
    return this.store.subarray(this.start, this.end);
  }

  /** Drop the first `n` held bytes. */
  consume(n: number): void {
    this.start = Math.min(this.start + n, this.end);
    if (this.start === this.end) this.clear();
  }

  /** Drop every held byte, and a store grown for a big output (a shell lives as long as its
   *  run: a thousand hosts must not each keep their largest output's room). */
  clear(): void {
    this.start = this.end = 0;
    if (this.store.length > 16 * this.initial) this.store = Buffer.allocUnsafe(this.initial);
  }

  /** Room for `more` bytes after the held ones: moved to the front, or into a store twice as big. */
  private makeRoom(more: number): void {
    const held = this.length;
    if (held + more <= this.store.length / 2) {
      this.store.copy(this.store, 0, this.start, this.end);
    } else {
      let size = this.store.length * 2;
      while (size < held + more) size *= 2;
      const next = Buffer.allocUnsafe(size);
      this.store.copy(next, 0, this.start, this.end);
      this.store = next;
    }
    this.start = 0;
    this.end = held;
  }
}
