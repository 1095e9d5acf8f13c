// A bad cram option or text: one line naming the value (its own module so that option modules such as
// schedule.ts can throw it without importing result.ts, which imports them).
export class CramError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = 'CramError';
  }
}
