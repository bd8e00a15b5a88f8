/** Collects SQL fragments and their bound values for a dynamic WHERE or SET clause. */
export class Conditions {
  readonly sql: string[] = [];
  readonly values: (string | number)[] = [];

  add(fragment: string, ...values: (string | number)[]): void {
    this.sql.push(fragment);
    this.values.push(...values);
  }

  /** `WHERE a AND b`, or the empty string. */
  where(): string {
    return this.sql.length > 0 ? `WHERE ${this.sql.join(' AND ')}` : '';
  }
}
