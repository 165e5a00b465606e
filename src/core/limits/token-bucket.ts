/**
 * A token bucket: `ratePerSecond` tokens a second, bursts of up to `ratePerSecond`. Used for
 * `limits.wsMessagesPerSecond`.
 */
export class TokenBucket {
  private tokens: number;
  private last = Date.now();

  constructor(readonly ratePerSecond: number) {
    this.tokens = ratePerSecond;
  }

  /** Takes one token; false when the bucket is empty (the caller is over the rate). */
  take(): boolean {
    const now = Date.now();
    this.tokens = Math.min(this.ratePerSecond, this.tokens + ((now - this.last) / 1000) * this.ratePerSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
