/** Redis lost its data while connected (RedisConnection.runAdmitting); `result` is what the script did all the same, if it ran. */
export class LostDataError extends Error {
  constructor(
    message: string,
    readonly result: unknown,
  ) {
    super(message);
    this.name = 'LostDataError';
  }
}
