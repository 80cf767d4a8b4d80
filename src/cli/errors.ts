/** An error caused by the user's input: printed without a stack trace, exit code 2 by default. */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
    this.name = 'UserError';
  }
}
